import { join } from 'path';
import { loadLineage } from '../../../cli/input-files';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { MetricDimension, PatchlineMetric } from '../../../lambdas/domain/patchline-metric';
import { findingEvent, SEED_CVE } from '../../support/finding-events';
import { projectConfig, projectTemplate, REPO_ROOT } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));

describe('Class: LocalMetrics (in the local runtime)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('records what the seed finding scenario emits, and never writes EMF to stdout', async () => {
    runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
    const written: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const opened = '2024-02-01T00:00:00Z';
    const closedAt = '2024-02-04T06:00:00Z';
    try {
      runtime.send(findingEvent({ repository: 'apps/payments-api', at: opened }));
      await runtime.runUntilQuiet();
      // Inspector closes the finding on that digest: time to remediate is counted once, a re-sent CLOSED adds nothing.
      runtime.send(findingEvent({ repository: 'apps/payments-api', at: closedAt, status: 'CLOSED' }));
      runtime.send(findingEvent({ repository: 'apps/payments-api', at: closedAt, status: 'CLOSED' }));
      await runtime.runUntilQuiet();
    } finally {
      stdout.mockRestore();
    }
    expect(written.filter((w) => w.includes('"_aws"'))).toEqual([]);

    const metrics = runtime.metrics;
    const alerts = runtime.result().alerts;
    expect(alerts).toHaveLength(1);
    expect(metrics.of(PatchlineMetric.ALERTS_SENT)).toEqual([{ name: PatchlineMetric.ALERTS_SENT, unit: 'Count', value: 1, dimensions: { [MetricDimension.KIND]: alerts[0].kind } }]);
    const campaigns = await runtime.deps.campaigns.list();
    expect(metrics.total(PatchlineMetric.CAMPAIGNS_STARTED)).toBe(campaigns.length);
    expect(campaigns.length).toBeGreaterThan(0);
    expect(metrics.of(PatchlineMetric.TIME_TO_REMEDIATE)).toEqual([
      { name: PatchlineMetric.TIME_TO_REMEDIATE, unit: 'Seconds', value: (Date.parse(closedAt) - Date.parse(opened)) / 1000, dimensions: { [MetricDimension.SEVERITY]: 'HIGH' } },
    ]);
    expect(alerts[0].vulnerability).toBe(SEED_CVE);
  });

  it('records a failed rebuild and its campaign\u2019s first failure', async () => {
    const config = projectConfig();
    runtime = await LocalRuntime.start({ config, lineage: SEED, template: projectTemplate(), builds: { failProjects: new Set(['enterprise-python-311']) } });
    runtime.send(findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' }));
    await runtime.runUntilQuiet();
    const failed = runtime.result().builds.filter((b) => b.status === 'FAILED');
    expect(failed.length).toBeGreaterThan(0);
    expect(runtime.metrics.total(PatchlineMetric.REBUILDS_FAILED)).toBe(failed.length);
    expect(runtime.metrics.total(PatchlineMetric.CAMPAIGNS_FAILED)).toBe(new Set(failed.map((b) => b.campaign)).size);
  });
});
