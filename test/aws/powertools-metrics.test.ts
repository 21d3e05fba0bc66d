import { MetricDimension, PATCHLINE_METRICS_NAMESPACE, PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { PowertoolsMetricsSink } from '../../lambdas/aws/powertools-metrics';
import { publishingMetrics } from '../../lambdas/handlers/dependencies';
import type { HandlerDependencies } from '../../lambdas/handlers/dependencies';

interface Emf {
  _aws: { Timestamp: number; CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> };
  [key: string]: unknown;
}

/** The EMF documents Powertools writes to stdout while `run` runs (what CloudWatch Logs turns into metrics). */
function emfWritten(run: () => void): Emf[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    run();
  } finally {
    spy.mockRestore();
  }
  return lines.flatMap((l) => l.split('\n')).filter((l) => l.includes('"_aws"')).map((l) => JSON.parse(l) as Emf);
}

describe('Class: PowertoolsMetricsSink', () => {
  const saved = { dev: process.env.POWERTOOLS_DEV, disabled: process.env.POWERTOOLS_METRICS_DISABLED };
  beforeAll(() => {
    delete process.env.POWERTOOLS_DEV;
    delete process.env.POWERTOOLS_METRICS_DISABLED;
  });
  afterAll(() => {
    if (saved.dev !== undefined) process.env.POWERTOOLS_DEV = saved.dev;
    if (saved.disabled !== undefined) process.env.POWERTOOLS_METRICS_DISABLED = saved.disabled;
  });

  describe('Method: flush', () => {
    it('writes EMF in the Patchline namespace, one document per dimension set, each with service', () => {
      const sink = new PowertoolsMetricsSink({ serviceName: 'patchline-registry-rescan' });
      sink.count(PatchlineMetric.CAMPAIGNS_RUNNING, 3);
      sink.count(PatchlineMetric.OPEN_FINDINGS, 2, { [MetricDimension.OWNER]: 'payments-team', [MetricDimension.SEVERITY]: 'HIGH' });
      sink.count(PatchlineMetric.OPEN_FINDINGS, 1, { [MetricDimension.SEVERITY]: 'CRITICAL', [MetricDimension.OWNER]: 'platform-team' });
      sink.seconds(PatchlineMetric.TIME_TO_REMEDIATE, 7200, { [MetricDimension.SEVERITY]: 'HIGH' });
      const docs = emfWritten(() => sink.flush());

      expect(docs).toHaveLength(4);
      for (const doc of docs) {
        expect(doc._aws.CloudWatchMetrics[0].Namespace).toBe(PATCHLINE_METRICS_NAMESPACE);
        expect(doc.service).toBe('patchline-registry-rescan');
      }
      const find = (name: string, where: Record<string, string> = {}) =>
        docs.find((d) => d[name] !== undefined && Object.entries(where).every(([k, v]) => d[k] === v));
      const running = find(PatchlineMetric.CAMPAIGNS_RUNNING)!;
      expect(running[PatchlineMetric.CAMPAIGNS_RUNNING]).toBe(3);
      expect(running._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service']]);
      const payments = find(PatchlineMetric.OPEN_FINDINGS, { Owner: 'payments-team' })!;
      expect(payments).toMatchObject({ [PatchlineMetric.OPEN_FINDINGS]: 2, Severity: 'HIGH' });
      expect([...payments._aws.CloudWatchMetrics[0].Dimensions[0]].sort()).toEqual(['Owner', 'Severity', 'service']);
      expect(find(PatchlineMetric.OPEN_FINDINGS, { Owner: 'platform-team' })).toMatchObject({ [PatchlineMetric.OPEN_FINDINGS]: 1, Severity: 'CRITICAL' });
      const remediated = find(PatchlineMetric.TIME_TO_REMEDIATE)!;
      expect(remediated._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: PatchlineMetric.TIME_TO_REMEDIATE, Unit: 'Seconds' }]);
      expect([...remediated._aws.CloudWatchMetrics[0].Dimensions[0]].sort()).toEqual(['Severity', 'service']);
    });

    it('puts two data points of one metric and dimension set in one document, as values', () => {
      const sink = new PowertoolsMetricsSink({ serviceName: 'patchline-finding-received' });
      sink.count(PatchlineMetric.ALERTS_SENT, 1, { [MetricDimension.KIND]: 'UPSTREAM_VULNERABLE' });
      sink.count(PatchlineMetric.ALERTS_SENT, 1, { [MetricDimension.KIND]: 'UPSTREAM_VULNERABLE' });
      const docs = emfWritten(() => sink.flush());
      expect(docs).toHaveLength(1);
      expect(docs[0][PatchlineMetric.ALERTS_SENT]).toEqual([1, 1]);
      expect(docs[0]._aws.CloudWatchMetrics[0].Metrics).toEqual([{ Name: PatchlineMetric.ALERTS_SENT, Unit: 'Count' }]);
    });

    it('writes nothing when nothing was counted, and nothing twice', () => {
      const sink = new PowertoolsMetricsSink({ serviceName: 'patchline-upstream-watch' });
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        expect(emfWritten(() => sink.flush())).toEqual([]);
        sink.count(PatchlineMetric.CAMPAIGNS_STARTED, 1);
        expect(emfWritten(() => sink.flush())).toHaveLength(1);
        expect(emfWritten(() => sink.flush())).toEqual([]);
      } finally {
        warn.mockRestore();
      }
    });
  });
});

describe('Function: publishingMetrics', () => {
  const recording = () => {
    const flushed: number[] = [];
    const deps = { metrics: { count: () => undefined, seconds: () => undefined, flush: () => flushed.push(1) } } as unknown as HandlerDependencies;
    return { deps, flushed };
  };

  it('publishes after the handler returns, with its result', async () => {
    const { deps, flushed } = recording();
    await expect(publishingMetrics(deps, async () => 'done')({})).resolves.toBe('done');
    expect(flushed).toEqual([1]);
  });

  it('publishes when the handler fails too, and refuses to swallow the error', async () => {
    const { deps, flushed } = recording();
    await expect(publishingMetrics(deps, async () => Promise.reject(new Error('boom')))({})).rejects.toThrow('boom');
    expect(flushed).toEqual([1]);
  });
});
