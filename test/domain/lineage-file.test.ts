import { readFileSync } from 'fs';
import { join } from 'path';
import { parseConfig } from '../../lambdas/domain/config';
import { LineageFileError, parseLineageFile } from '../../lambdas/domain/lineage-file';
import { RegistryScope } from '../../lambdas/domain/registry-scope';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const LINEAGE = readFileSync(join(EXAMPLES, 'lineage.yaml'), 'utf8');
const ORGANIZATION = parseConfig(JSON.parse(readFileSync(join(EXAMPLES, 'organization.config.json'), 'utf8'))).organization!;
const scope = RegistryScope.forOrganization(ORGANIZATION);
const canonicalKey = (key: string): string => scope.canonicalKey(key);
const HUB = `${ORGANIZATION.hub.account}.dkr.ecr.${ORGANIZATION.hub.region}.amazonaws.com`;
const SPOKE = `${ORGANIZATION.spokes[0].account}.dkr.ecr.${ORGANIZATION.spokes[0].region}.amazonaws.com`;

describe('Function: parseLineageFile', () => {
  describe('with a canonicalKey (an organization scope)', () => {
    it('keys hub images named in qualified form by their bare repository, as images and as parents', () => {
      const qualified = LINEAGE.replace('image: enterprise/python-311', `image: ${HUB}/enterprise/python-311`)
        .replace('image: apps/orders-api', `image: ${HUB}/apps/orders-api`)
        .replace('parents: [enterprise/python-311]', `parents: [${HUB}/enterprise/python-311]`);
      expect(qualified).toContain(`${HUB}/enterprise/python-311`);
      expect(parseLineageFile('lineage.yaml', qualified, { canonicalKey })).toEqual(parseLineageFile('lineage.yaml', LINEAGE));
    });

    it('resolves a tagged qualified parent to the declared hub image', () => {
      const text = LINEAGE.replace('parents: [enterprise/python-311]', `parents: ["${HUB}/enterprise/python-311:1.4"]`);
      const payments = parseLineageFile('lineage.yaml', text, { canonicalKey }).find((n) => n.image === 'apps/payments-api');
      expect(payments?.parents).toEqual([{ image: 'enterprise/python-311', role: 'runtime' }]);
    });

    it('keeps a spoke image qualified', () => {
      const text = `${LINEAGE}  - image: ${SPOKE}/apps/payments-worker\n    parents: [${HUB}/enterprise/python-311]\n`;
      const worker = parseLineageFile('lineage.yaml', text, { canonicalKey }).find((n) => n.image.endsWith('/apps/payments-worker'));
      expect(worker).toEqual(expect.objectContaining({ image: `${SPOKE}/apps/payments-worker`, parents: [{ image: 'enterprise/python-311', role: 'runtime' }] }));
    });

    it('canonicalizes TSV children and parents', () => {
      const nodes = parseLineageFile('edges.tsv', `${SPOKE}/apps/payments-worker\t${HUB}/enterprise/python-311\n${HUB}/apps/orders-api\tenterprise/python-311\n`, { canonicalKey });
      expect(nodes.map((n) => [n.image, n.parents.map((p) => p.image)])).toEqual([
        [`${SPOKE}/apps/payments-worker`, ['enterprise/python-311']],
        ['apps/orders-api', ['enterprise/python-311']],
      ]);
    });

    it('refuses a hub image declared both bare and qualified', () => {
      const text = `${LINEAGE}  - image: ${HUB}/enterprise/python-311\n`;
      expect(() => parseLineageFile('lineage.yaml', text, { canonicalKey })).toThrow(LineageFileError);
      expect(() => parseLineageFile('lineage.yaml', text, { canonicalKey })).toThrow(/declared twice/);
    });
  });

  it('keeps qualified keys as written without a canonicalKey (a single-account deployment)', () => {
    const text = LINEAGE.replace('image: enterprise/python-311', `image: ${HUB}/enterprise/python-311`);
    expect(parseLineageFile('lineage.yaml', text).map((n) => n.image)).toContain(`${HUB}/enterprise/python-311`);
  });
});
