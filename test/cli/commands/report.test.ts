import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseInspectorFindingEvent } from '../../../lambdas/domain/finding';
import { PostureReport } from '../../../lambdas/domain/posture';
import { registryHost } from '../../../lambdas/domain/registry-scope';
import { FindingStore } from '../../../lambdas/store/finding-store';
import { reportCommand } from '../../../cli/commands/report';
import { openStore } from '../../../cli/store-session';
import { digestFor, findingEventIn, SEED_CVE } from '../../support/finding-events';

const HUB = { account: '111111111111', region: 'eu-west-1' };
const SPOKE = { account: '222222222222', region: 'eu-west-1' };
const SPOKE_PAYMENTS = `${registryHost(SPOKE.account, SPOKE.region)}/apps/payments-api`;
const DIGEST = digestFor('payments-api-in-both-registries');

describe('Function: reportCommand', () => {
  const cwd = process.cwd();
  let dir: string;
  beforeAll(async () => {
    // The embedded store lives under ./.patchline: each run of this file gets a directory of its own.
    dir = mkdtempSync(join(tmpdir(), 'patchline-report-'));
    process.chdir(dir);
    const store = await openStore({});
    try {
      await store.lineage.putImages([
        { image: 'apps/payments-api', tier: 'application', owner: 'hub-team', parents: [] },
        { image: SPOKE_PAYMENTS, tier: 'application', owner: 'payments-team', parents: [] },
      ]);
      const findings = new FindingStore({ client: store.client, tableName: store.tableName });
      // The same repository, digest and CVE in both accounts: CRITICAL in the hub, MEDIUM in the spoke.
      const hub = parseInspectorFindingEvent(findingEventIn(HUB, { repository: 'apps/payments-api', digest: DIGEST, severity: 'CRITICAL', at: '2024-02-01T00:00:00Z' }));
      const spoke = parseInspectorFindingEvent(findingEventIn(SPOKE, { repository: 'apps/payments-api', digest: DIGEST, severity: 'MEDIUM', at: '2024-02-01T00:00:00Z' }));
      await findings.record('apps/payments-api', hub);
      await findings.record(SPOKE_PAYMENTS, spoke);
    } finally {
      await store.close();
    }
  });
  afterAll(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('attributes each stored finding to its own registry’s image', async () => {
    const report = JSON.parse(await reportCommand({ format: 'json' })) as PostureReport;
    const owner = (name: string) => report.owners.find((o) => o.owner === name)!;
    expect(owner('hub-team').openFindings).toMatchObject({ CRITICAL: 1, MEDIUM: 0, total: 1 });
    expect(owner('payments-team').openFindings).toMatchObject({ CRITICAL: 0, MEDIUM: 1, total: 1 });
    expect(owner('payments-team').oldestUnpatched).toMatchObject({ image: SPOKE_PAYMENTS, vulnerabilityId: SEED_CVE, severity: 'MEDIUM' });
    expect(report.images.find((i) => i.image === SPOKE_PAYMENTS)!.highestSeverity).toBe('MEDIUM');
  });
});
