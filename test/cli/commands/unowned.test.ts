import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { loadLineage } from '../../../cli/input-files';
import { findUnownedImages, lineageUnownedCommand } from '../../../cli/commands/unowned';
import { openStore } from '../../../cli/store-session';
import { DiscoveryStore } from '../../../lambdas/store/discovery-store';
import { digestOf, REPO_ROOT } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));

describe('Function: findUnownedImages', () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'patchline-unowned-'));
    const store = await openStore({ stateDir });
    try {
      await store.lineage.putImages([
        ...SEED.map((n) => (n.image === 'apps/orders-api' ? { ...n, owner: undefined } : n)),
        { image: 'apps/learned-api', tier: 'application', parents: [{ image: 'enterprise/python-311', role: 'runtime' }] },
      ]);
      const discovery = new DiscoveryStore({ client: store.client, tableName: store.tableName });
      await discovery.recordLearned('apps/learned-api', {
        digest: digestOf('learned'),
        at: '2024-03-01T00:00:00Z',
        source: 'manifest-annotation',
        change: 'added',
        parent: 'enterprise/python-311',
        baseName: '123456789012.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311@' + digestOf('py'),
      });
      await discovery.recordTagged('apps/learned-api', { at: '2024-03-01T00:00:00Z', source: 'repository-tag', notes: ['repository tag "owner" refused: "nobody" is not a configured owner'] });
      await discovery.recordRefused('apps/orders-api', { digest: digestOf('refused'), at: '2024-03-02T00:00:00Z', code: 'LINEAGE_CYCLE', reason: 'lineage cycle refused: a → b → a' });
    } finally {
      await store.close();
    }
  });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  it('lists the images without an owner, with their tier, where they were learned from and why a tag was not taken', async () => {
    const images = await findUnownedImages({ stateDir });
    expect(images.map((i) => [i.image, i.tier])).toEqual([
      ['apps/learned-api', 'application'],
      ['apps/orders-api', 'application'],
    ]);
    expect(images[0].learnedFrom).toMatch(/^ECR push sha256:.*manifest-annotation .*enterprise\/python-311@sha256:.* \(added\)$/);
    expect(images[0].notes).toEqual(['repository tag "owner" refused: "nobody" is not a configured owner']);
    expect(images[1].learnedFrom).toMatch(/^lineage file/);
    expect(images[1].notes[0]).toContain('LINEAGE_CYCLE');
  });

  it('includes the external (upstream) images only when asked', async () => {
    const all = await findUnownedImages({ stateDir, all: true });
    expect(all.filter((i) => i.tier === 'external').map((i) => i.image).sort()).toEqual(['registry.access.redhat.com/ubi9/python-311:1-34', 'registry.access.redhat.com/ubi9/ubi-minimal:9.4']);
  });
});

describe('Function: lineageUnownedCommand', () => {
  it('says so when every image has an owner', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'patchline-owned-'));
    try {
      // The command's default embedded store: .patchline/ under the working directory.
      const store = await openStore({ stateDir: join(stateDir, '.patchline') });
      await store.lineage.putImages(SEED);
      await store.close();
      const previous = process.cwd();
      process.chdir(stateDir);
      try {
        expect(await lineageUnownedCommand({})).toBe('every image has an owner');
        expect(JSON.parse(await lineageUnownedCommand({ json: true, all: true })).length).toBe(2);
      } finally {
        process.chdir(previous);
      }
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
