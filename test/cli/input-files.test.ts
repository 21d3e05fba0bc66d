import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { loadConfig, loadLineage } from '../../cli/input-files';
import { REPO_ROOT } from '../support/template';

const ORGANIZATION_CONFIG = join(REPO_ROOT, 'examples', 'organization.config.json');
const LINEAGE = readFileSync(join(REPO_ROOT, 'examples', 'lineage.yaml'), 'utf8');

describe('Function: loadLineage', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-lineage-'));
    file = join(dir, 'lineage.yaml');
    const { hub } = loadConfig(ORGANIZATION_CONFIG).organization!;
    writeFileSync(file, LINEAGE.replace('image: enterprise/python-311', `image: ${hub.account}.dkr.ecr.${hub.region}.amazonaws.com/enterprise/python-311`));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives a hub image named by its qualified key its bare key when the config has an organization', () => {
    const images = loadLineage(file, loadConfig(ORGANIZATION_CONFIG)).map((n) => n.image);
    expect(images).toContain('enterprise/python-311');
    expect(images.filter((i) => i.includes('.dkr.ecr.'))).toEqual([]);
  });

  it('keeps keys as written without an organization', () => {
    const images = loadLineage(file, loadConfig(join(REPO_ROOT, 'patchline.config.json'))).map((n) => n.image);
    expect(images).not.toContain('enterprise/python-311');
    expect(images.filter((i) => i.endsWith('.amazonaws.com/enterprise/python-311'))).toHaveLength(1);
  });
});
