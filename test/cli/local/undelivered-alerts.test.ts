import { join } from 'path';
import { loadLineage } from '../../../cli/input-files';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { AlertKind } from '../../../lambdas/domain/alert';
import { parseConfig } from '../../../lambdas/domain/config';
import { parseInspectorFindingEvent } from '../../../lambdas/domain/finding';
import { MetricDimension, PatchlineMetric } from '../../../lambdas/domain/patchline-metric';
import { findingEvent, SEED_CVE } from '../../support/finding-events';
import { projectConfig, projectTemplate, REPO_ROOT, sampleEvent } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const FINDING = { repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' };
/** The alert of the seed finding: the fix comes from the platform image's upstream base. */
const ALERT = { owner: 'platform-team', kind: AlertKind.UPSTREAM_VULNERABLE, image: 'enterprise/python-311', vulnerability: SEED_CVE };
/** One Publish and the six retries of publishAlerts. */
const PUBLISH_ATTEMPTS = 7;

const findingExecutions = (runtime: LocalRuntime): Array<{ status: string; error?: { Error: string; Cause: string }; states: string[] }> =>
  runtime.stepFunctions.allExecutions.filter((e) => e.stateMachine.includes('FindingReceived'));
const snsCalls = (runtime: LocalRuntime): Array<{ outcome?: string }> => runtime.calls.filter((c) => c.service === 'sns');
const alertDeadLetters = (runtime: LocalRuntime): Array<Record<string, any>> =>
  runtime.calls
    .filter((c) => c.service === 'sqs' && typeof (c.parameters as { MessageBody?: unknown }).MessageBody === 'object')
    .map((c) => (c.parameters as { MessageBody: Record<string, any> }).MessageBody)
    .filter((body) => body.alert !== undefined);

describe('Function: publishAlerts (finding-received workflow, run locally from the synthesized template)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('publishes the alert, succeeds, and dead-letters nothing when SNS takes it', async () => {
    runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
    runtime.send(findingEvent(FINDING));
    await runtime.runUntilQuiet();

    expect(runtime.result().alerts).toEqual([ALERT]);
    expect(snsCalls(runtime)).toEqual([expect.not.objectContaining({ outcome: expect.anything() })]);
    // The claim travels with the alert for the failure path only: it is not part of the Publish.
    expect(runtime.sns.published[0].message).not.toContain('sentAt');
    expect(runtime.deadLetters.messages).toEqual([]);
    const [execution] = findingExecutions(runtime);
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states).toContain('AlertsDelivered');
    expect(execution.states).not.toContain('PublishAlertReleaseClaim');
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT, { [MetricDimension.KIND]: ALERT.kind })).toBe(1);
    expect(runtime.metrics.of(PatchlineMetric.ALERTS_UNDELIVERED)).toEqual([]);
  });

  it('fails when SNS refuses every attempt: gives the claim back, dead-letters the alert with the reason, still starts the rebuilds', async () => {
    runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
    runtime.sns.refuseWith = 'SNS.InternalErrorException';
    runtime.send(findingEvent(FINDING));
    await runtime.runUntilQuiet();

    expect(runtime.sns.published).toEqual([]);
    expect(snsCalls(runtime)).toHaveLength(PUBLISH_ATTEMPTS);
    const [execution] = findingExecutions(runtime);
    expect(execution.status).toBe('FAILED');
    expect(execution.error?.Error).toBe('AlertsUndelivered');
    expect(execution.states).toEqual(expect.arrayContaining(['PublishAlertReleaseClaim', 'PublishAlertDeadLetter', 'StartFindingRebuilds', 'AlertsUndelivered']));
    // The campaign the finding called for ran all the same.
    expect(runtime.codebuild.builds.length).toBeGreaterThan(0);

    const [letter, ...others] = alertDeadLetters(runtime);
    expect(others).toEqual([]);
    expect(letter).toEqual({
      reason: 'the alert was not published to SNS after retries: Internal error: the local SNS refuses every Publish',
      error: 'SNS.InternalErrorException',
      stateMachine: expect.stringContaining('FindingReceived'),
      execution: expect.stringContaining(':express:'),
      alert: { subject: expect.stringContaining(SEED_CVE), message: expect.stringContaining('--- JSON ---'), attributes: { ...ALERT, severity: 'HIGH' } },
      claimReleased: { released: true },
    });
    // What `patchline simulate` reports: the undelivered alert is the dead letter to replay.
    expect(runtime.result().deadLetters).toEqual([{ reason: letter.reason, event: letter.alert }]);
    // Counted sent when claimed, undelivered when its claim was given back: sent − undelivered reached SNS (none).
    expect(runtime.metrics.of(PatchlineMetric.ALERTS_UNDELIVERED)).toEqual([{ name: PatchlineMetric.ALERTS_UNDELIVERED, unit: 'Count', value: 1, dimensions: { [MetricDimension.KIND]: ALERT.kind } }]);
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT) - runtime.metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(runtime.sns.published.length);
  });

  it('alerts again when the finding is re-delivered after an undelivered alert, and then deduplicates as before', async () => {
    runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
    runtime.sns.refuseWith = 'SNS.InternalErrorException';
    runtime.send(findingEvent(FINDING));
    await runtime.runUntilQuiet();
    expect(runtime.sns.published).toEqual([]);

    runtime.sns.refuseWith = undefined;
    runtime.send(findingEvent(FINDING));
    await runtime.runUntilQuiet();
    expect(runtime.result().alerts).toEqual([ALERT]);
    expect(findingExecutions(runtime).map((e) => e.status)).toEqual(['FAILED', 'SUCCEEDED']);

    // The claim of the delivered alert stands: a third delivery is deduplicated.
    runtime.send(findingEvent(FINDING));
    await runtime.runUntilQuiet();
    expect(runtime.result().alerts).toEqual([ALERT]);
    expect(findingExecutions(runtime).map((e) => e.status)).toEqual(['FAILED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT, { [MetricDimension.KIND]: ALERT.kind })).toBe(2);
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_UNDELIVERED, { [MetricDimension.KIND]: ALERT.kind })).toBe(1);
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT) - runtime.metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(runtime.sns.published.length);
  });
});

describe('Function: publishAlerts (scan-completed workflow, an alert without a dedup claim, run locally)', () => {
  const SCAN_SAMPLE = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';
  const ROOT = 'enterprise/python-311';
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  /** The real "Inspector2 Scan" sample with its placeholder digest and repository replaced. */
  function scanEvent(repository: string, digest: string): Record<string, unknown> {
    const event = structuredClone(sampleEvent(SCAN_SAMPLE)) as Record<string, any>;
    event.detail['repository-name'] = `arn:aws:ecr:us-east-2:123456789012:repository/${repository}`;
    event.detail['image-digest'] = digest;
    return event;
  }

  it('counts a refused STILL_VULNERABLE alert undelivered through release-alert-claim: sent − undelivered is what SNS received', async () => {
    const config = projectConfig();
    runtime = await LocalRuntime.start({ config: parseConfig({ ...config, rebuild: { ...config.rebuild, settleWindowSeconds: 0 } }), lineage: SEED, template: projectTemplate() });
    // A finding on the root starts a campaign; its alert reaches SNS.
    runtime.send(findingEvent({ repository: ROOT, at: '2024-02-01T00:00:00Z' }));
    await runtime.runUntilQuiet();
    const delivered = runtime.sns.published.length;
    expect(delivered).toBeGreaterThan(0);
    const digest = runtime.codebuild.builds.find((b) => b.image === ROOT)!.pushedDigest!;

    // The rebuilt image's scan still has the CVE: scan-completed alerts STILL_VULNERABLE (no dedup claim), SNS refuses it.
    await runtime.deps.findings!.record(ROOT, parseInspectorFindingEvent(findingEvent({ repository: ROOT, digest, at: '2024-02-02T00:00:00Z' })));
    runtime.sns.refuseWith = 'SNS.InternalErrorException';
    runtime.send(scanEvent(ROOT, digest));
    await runtime.runUntilQuiet();

    expect(runtime.sns.published).toHaveLength(delivered);
    const [execution, ...others] = runtime.stepFunctions.allExecutions.filter((e) => e.stateMachine.includes('ScanCompleted'));
    expect(others).toEqual([]);
    expect(execution.status).toBe('FAILED');
    expect(execution.states).toEqual(expect.arrayContaining(['PublishStillVulnerableUnclaimed', 'PublishStillVulnerableReleaseClaim', 'PublishStillVulnerableDeadLetter']));
    const letters = alertDeadLetters(runtime);
    expect(letters.map((l) => ({ kind: l.alert.attributes.kind, claimReleased: l.claimReleased }))).toEqual([{ kind: AlertKind.STILL_VULNERABLE, claimReleased: { released: false } }]);

    const stillVulnerable = { [MetricDimension.KIND]: AlertKind.STILL_VULNERABLE };
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT, stillVulnerable)).toBe(1);
    expect(runtime.metrics.of(PatchlineMetric.ALERTS_UNDELIVERED)).toEqual([{ name: PatchlineMetric.ALERTS_UNDELIVERED, unit: 'Count', value: 1, dimensions: stillVulnerable }]);
    expect(runtime.metrics.total(PatchlineMetric.ALERTS_SENT) - runtime.metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(runtime.sns.published.length);
  });
});
