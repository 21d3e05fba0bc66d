import { LocalMetrics } from '../../cli/local/local-metrics';
import { Alert, AlertKind, buildAlert } from '../../lambdas/domain/alert';
import { NormalizedFinding, parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import { MetricDimension, PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { collectAlerts, MissingAlertDedupError, publishableAlert } from '../../lambdas/handlers/publishable-alerts';
import { AlertDedupStore } from '../../lambdas/store/finding-store';
import { startTestTable } from '../support/dynamodb';
import { findingEvent } from '../support/finding-events';

const finding: NormalizedFinding = parseInspectorFindingEvent(findingEvent({ repository: 'apps/payments-api' }));
const NOW = new Date('2024-02-01T00:00:00Z');

function stillVulnerable(owner: string): Alert {
  return buildAlert({ kind: AlertKind.STILL_VULNERABLE, owner, image: finding.repository, digest: finding.digest, vulnerabilityId: finding.vulnerabilityId, severity: finding.severity, packages: finding.packages });
}

const claimOf = (alert: Alert) => ({ digest: finding.digest, vulnerabilityId: alert.vulnerabilityId, kind: alert.kind, severity: finding.severity });

describe('Function: publishableAlert', () => {
  it('carries the subject, the body with the JSON after the separator, and the filter attributes', () => {
    const alert = stillVulnerable('payments-team');
    const published = publishableAlert(alert);
    expect(published.subject).toBe(alert.subject);
    expect(published.message.split('\n\n--- JSON ---\n')).toEqual([alert.body, alert.json]);
    expect(published.attributes).toEqual({ owner: 'payments-team', severity: finding.severity, image: finding.repository, kind: AlertKind.STILL_VULNERABLE, vulnerability: finding.vulnerabilityId });
  });
});

describe('Function: collectAlerts', () => {
  let table: Awaited<ReturnType<typeof startTestTable>>;
  let alertDedup: AlertDedupStore;
  let metrics: LocalMetrics;

  beforeEach(async () => {
    table = await startTestTable();
    alertDedup = new AlertDedupStore({ client: table.client, tableName: table.tableName, windowSeconds: 86_400 });
    metrics = new LocalMetrics();
  });
  afterEach(async () => {
    await table.stop();
  });

  it('sends a claimed alert once within the window and counts only the one sent', async () => {
    const alert = stillVulnerable('payments-team');
    const first = await collectAlerts({ alertDedup, metrics }, [{ alert, claim: claimOf(alert) }], NOW);
    const again = await collectAlerts({ alertDedup, metrics }, [{ alert, claim: claimOf(alert) }], new Date(NOW.getTime() + 3_600_000));
    // The sent alert carries its claim, to be given back if the Publish fails for good.
    expect(first).toEqual({ alerts: [{ ...publishableAlert(alert), claim: { ...claimOf(alert), sentAt: NOW.toISOString() } }], suppressed: 0 });
    expect(again).toEqual({ alerts: [], suppressed: 1 });
    expect(metrics.of(PatchlineMetric.ALERTS_SENT)).toEqual([{ name: PatchlineMetric.ALERTS_SENT, unit: 'Count', value: 1, dimensions: { [MetricDimension.KIND]: AlertKind.STILL_VULNERABLE } }]);
  });

  it('sends the alert again once the claim it carries is given back', async () => {
    const alert = stillVulnerable('payments-team');
    const [sent] = (await collectAlerts({ alertDedup, metrics }, [{ alert, claim: claimOf(alert) }], NOW)).alerts;
    expect(await alertDedup.release(sent.claim!)).toBe(true);
    const retried = await collectAlerts({ alertDedup, metrics }, [{ alert, claim: claimOf(alert) }], new Date(NOW.getTime() + 60_000));
    expect(retried.alerts.map((p) => p.claim?.sentAt)).toEqual([new Date(NOW.getTime() + 60_000).toISOString()]);
  });

  it('claims candidates one after another: two with one identity send one alert', async () => {
    const [a, b] = [stillVulnerable('payments-team'), stillVulnerable('platform-team')];
    const collected = await collectAlerts({ alertDedup, metrics }, [{ alert: a, claim: claimOf(a) }, { alert: b, claim: claimOf(b) }], NOW);
    expect(collected.alerts.map((p) => p.attributes.owner)).toEqual(['payments-team']);
    expect(collected.suppressed).toBe(1);
  });

  it('sends alerts without a claim every time, in the order given, without a dedup store', async () => {
    const candidates = [{ alert: stillVulnerable('payments-team') }, { alert: stillVulnerable('platform-team') }];
    for (let i = 0; i < 2; i++) {
      const { alerts } = await collectAlerts({ metrics }, candidates, NOW);
      expect(alerts.map((p) => p.attributes.owner)).toEqual(['payments-team', 'platform-team']);
      expect(alerts.map((p) => p.claim)).toEqual([undefined, undefined]);
    }
    expect(metrics.total(PatchlineMetric.ALERTS_SENT)).toBe(4);
  });

  it('refuses a claim without a dedup store, before sending anything', async () => {
    const alert = stillVulnerable('payments-team');
    await expect(collectAlerts({ metrics }, [{ alert: stillVulnerable('platform-team') }, { alert, claim: claimOf(alert) }], NOW)).rejects.toThrow(MissingAlertDedupError);
    expect(metrics.total(PatchlineMetric.ALERTS_SENT)).toBe(0);
  });
});
