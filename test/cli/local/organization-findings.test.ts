import { readFileSync } from 'fs';
import { join } from 'path';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { parseConfig, PatchlineConfig } from '../../../lambdas/domain/config';
import { ImageNode } from '../../../lambdas/domain/lineage';
import { hubAccessRoleArn, registryHost } from '../../../lambdas/domain/registry-scope';
import { digestFor, findingEventIn, SEED_CVE } from '../../support/finding-events';
import { REPO_ROOT } from '../../support/template';

const HUB = { account: '111111111111', region: 'eu-west-1' };
const PAYMENTS = { account: '222222222222', region: 'eu-west-1' };

/** The shipped example with the orders account in the hub's region (as organization.test.ts). */
function config(): PatchlineConfig {
  const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')) as { organization: { spokes: Array<{ region: string }> } };
  raw.organization.spokes[1].region = PAYMENTS.region;
  return parseConfig(raw);
}

const key = (repository: string): string => `${registryHost(PAYMENTS.account, PAYMENTS.region)}/${repository}`;

function lineage(): ImageNode[] {
  return [
    { image: 'enterprise/python-311', tier: 'enterprise', owner: 'platform-team', parents: [{ image: 'registry.access.redhat.com/ubi9/python-311:1-34', role: 'runtime' }], build: { project: 'enterprise-python-311' } },
    { image: key('apps/payments-api'), tier: 'application', owner: 'payments-team', parents: [{ image: 'enterprise/python-311', role: 'runtime' }], build: { project: 'apps-payments-api' } },
    { image: key('apps/payments-worker'), tier: 'application', owner: 'payments-team', parents: [{ image: key('apps/payments-api'), role: 'runtime' }], build: { project: 'apps-payments-worker' } },
  ];
}

describe('Class: LocalRuntime (organization findings)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  describe('Method: runUntilQuiet', () => {
    it('attributes a team account finding to the team image, alerts its owner and rebuilds it in the team account', async () => {
      const digest = digestFor('payments-api-scanned');
      runtime = await LocalRuntime.start({ config: config(), lineage: lineage() });
      // The platform image was scanned in the hub without the team's CVE (a low one only, below the threshold): the
      // team image's own packages are the origin.
      runtime.send(findingEventIn(HUB, { repository: 'enterprise/python-311', digest: digestFor('enterprise-scanned'), vulnerabilityId: 'CVE-2024-0001', severity: 'LOW', packageName: 'zlib' }));
      await runtime.runUntilQuiet();
      expect(runtime.codebuild.builds).toEqual([]);
      runtime.send(findingEventIn(PAYMENTS, { repository: 'apps/payments-api', digest }));
      await runtime.runUntilQuiet();

      const result = runtime.result();
      expect(result.deadLetters).toEqual([]);
      // Alerted to the team image's owner, about the registry-qualified team image (not a same-named hub repository).
      expect(result.alerts).toEqual([{ owner: 'payments-team', kind: 'REBUILD_STARTED', image: key('apps/payments-api'), vulnerability: SEED_CVE }]);

      // The campaign is rooted at the team image and every build runs in the team account, through its hub-access role.
      const builds = runtime.codebuild.builds;
      expect(builds.map((b) => b.image).sort()).toEqual([key('apps/payments-api'), key('apps/payments-worker')]);
      expect(new Set(builds.map((b) => b.campaign)).size).toBe(1);
      for (const build of builds) {
        expect(build.status).toBe('SUCCEEDED');
        expect(build.roleArn).toBe(hubAccessRoleArn(PAYMENTS.account, PAYMENTS.region));
        expect(build.registry).toEqual(PAYMENTS);
      }
      const campaign = await runtime.deps.campaigns.get(builds[0].campaign);
      expect(campaign?.rootImage).toBe(key('apps/payments-api'));
      expect(campaign?.trigger).toBe('finding');
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });
  });
});
