import { GetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AlertKind, alertDedupKey } from '../../lambdas/domain/alert';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { MetricDimension, PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import { MissingAlertDedupError } from '../../lambdas/handlers/publishable-alerts';
import { makeReleaseAlertClaimHandler } from '../../lambdas/handlers/release-alert-claim';
import { AlertDedupStore, alertClaimReceipt } from '../../lambdas/store/finding-store';
import { LocalMetrics } from '../../cli/local/local-metrics';
import { startTestTable } from '../support/dynamodb';
import { SEED_CVE } from '../support/finding-events';

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
const DIGEST = `sha256:${'e'.repeat(64)}`;
const NOW = new Date('2024-02-01T00:00:00Z');
const CLAIM = { digest: DIGEST, vulnerabilityId: SEED_CVE, kind: AlertKind.REBUILD_STARTED, severity: 'HIGH' as const };

describe('Function: makeReleaseAlertClaimHandler', () => {
  let emulator: Emulator;
  let alertDedup: AlertDedupStore;
  beforeAll(async () => {
    emulator = await startTestTable();
    alertDedup = new AlertDedupStore({ client: emulator.client, tableName: emulator.tableName, windowSeconds: 86_400 });
  });
  afterAll(async () => {
    await emulator.stop();
  });

  it('gives back the claim of the receipt it is passed (as the state machine passes `$.claim`), once', async () => {
    expect(await alertDedup.claim(CLAIM, NOW)).toBe(true);
    const release = makeReleaseAlertClaimHandler({ alertDedup });
    // The receipt crossed the state machine as JSON.
    const receipt: unknown = JSON.parse(JSON.stringify(alertClaimReceipt(CLAIM, NOW)));
    expect(await release(receipt)).toEqual({ released: true });
    expect(await release(receipt)).toEqual({ released: false });
    const doc = DynamoDBDocumentClient.from(emulator.client);
    const key = { pk: `ALERT#${alertDedupKey(DIGEST, SEED_CVE, AlertKind.REBUILD_STARTED)}`, sk: 'ALERT' };
    expect((await doc.send(new GetCommand({ TableName: emulator.tableName, Key: key, ConsistentRead: true }))).Item).toBeUndefined();
  });

  describe('Metric: AlertsUndelivered', () => {
    const undelivered = (kind: string) => ({ name: PatchlineMetric.ALERTS_UNDELIVERED, unit: 'Count', value: 1, dimensions: { [MetricDimension.KIND]: kind } });

    it('counts each alert whose claim it gives back once, by kind', async () => {
      const metrics = new LocalMetrics();
      const release = makeReleaseAlertClaimHandler({ alertDedup, metrics });
      const digest = `sha256:${'a'.repeat(64)}`;
      const rebuild = { ...CLAIM, digest };
      const upstream = { ...CLAIM, digest, kind: AlertKind.UPSTREAM_VULNERABLE };
      const expired = { ...CLAIM, digest, kind: AlertKind.EXCEPTION_EXPIRED, severity: 'CRITICAL' as const };
      for (const claim of [rebuild, upstream, expired]) expect(await alertDedup.claim(claim, NOW)).toBe(true);

      for (const claim of [rebuild, upstream, expired]) expect(await release(alertClaimReceipt(claim, NOW))).toEqual({ released: true });

      expect(metrics.of(PatchlineMetric.ALERTS_UNDELIVERED)).toEqual([
        undelivered(AlertKind.REBUILD_STARTED),
        undelivered(AlertKind.UPSTREAM_VULNERABLE),
        undelivered(AlertKind.EXCEPTION_EXPIRED),
      ]);
      expect(metrics.recorded).toHaveLength(3);
    });

    it('does not count a release that finds no claim: a retried invocation, or a newer claim holding the record', async () => {
      const metrics = new LocalMetrics();
      const release = makeReleaseAlertClaimHandler({ alertDedup, metrics });
      const claim = { ...CLAIM, digest: `sha256:${'b'.repeat(64)}` };
      expect(await alertDedup.claim(claim, NOW)).toBe(true);
      const receipt = alertClaimReceipt(claim, NOW);
      expect(await release(receipt)).toEqual({ released: true });
      // The state machine retried the invocation: the alert is counted once.
      expect(await release(receipt)).toEqual({ released: false });
      expect(metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(1);

      // An escalation claimed the same identity since: its record stays and nothing is counted for the stale receipt.
      const later = new Date(NOW.getTime() + 60_000);
      expect(await alertDedup.claim(claim, NOW)).toBe(true);
      expect(await alertDedup.claim({ ...claim, severity: 'CRITICAL' }, later)).toBe(true);
      expect(await release(alertClaimReceipt(claim, NOW))).toEqual({ released: false });
      expect(metrics.total(PatchlineMetric.ALERTS_UNDELIVERED)).toBe(1);
    });

    it('counts an alert that held no claim by its kind, once per invocation, without a dedup store and deleting nothing', async () => {
      const metrics = new LocalMetrics();
      const claim = { ...CLAIM, digest: `sha256:${'c'.repeat(64)}`, kind: AlertKind.STILL_VULNERABLE };
      expect(await alertDedup.claim(claim, NOW)).toBe(true);
      // As the state machine passes it: publishAlerts' Unclaimed state writes the alert's `kind` attribute.
      const unclaimed: unknown = JSON.parse(JSON.stringify({ claimed: false, kind: AlertKind.STILL_VULNERABLE }));

      expect(await makeReleaseAlertClaimHandler({ alertDedup, metrics })(unclaimed)).toEqual({ released: false });
      expect(await makeReleaseAlertClaimHandler({ metrics })(unclaimed)).toEqual({ released: false });

      expect(metrics.of(PatchlineMetric.ALERTS_UNDELIVERED)).toEqual([undelivered(AlertKind.STILL_VULNERABLE), undelivered(AlertKind.STILL_VULNERABLE)]);
      expect(metrics.recorded).toHaveLength(2);
      // A claim of the same kind is not touched.
      expect(await alertDedup.claim(claim, new Date(NOW.getTime() + 60_000))).toBe(false);
    });

    it.each([
      ['an unknown alert kind', { claimed: false, kind: 'OTHER' }, /kind/],
      ['no kind', { claimed: false }, /kind: .*\(got missing\)/],
      ['claimed: true without a receipt', { claimed: true, kind: AlertKind.STILL_VULNERABLE }, /claimed/],
      ['a receipt field besides the kind', { claimed: false, kind: AlertKind.STILL_VULNERABLE, sentAt: NOW.toISOString() }, /sentAt/],
    ])('fails on an unclaimed alert with %s, counting nothing', async (_what, event, message) => {
      const metrics = new LocalMetrics();
      const release = makeReleaseAlertClaimHandler({ alertDedup, metrics });
      await expect(release(event)).rejects.toThrow(InvalidEventError);
      await expect(release(event)).rejects.toThrow(/invalid unclaimed alert event/);
      await expect(release(event)).rejects.toThrow(message);
      expect(metrics.recorded).toEqual([]);
    });

    it('counts nothing when it refuses the receipt', async () => {
      const metrics = new LocalMetrics();
      await expect(makeReleaseAlertClaimHandler({ alertDedup, metrics })({ ...CLAIM })).rejects.toThrow(InvalidEventError);
      await expect(makeReleaseAlertClaimHandler({ metrics })(alertClaimReceipt(CLAIM, NOW))).rejects.toThrow(MissingAlertDedupError);
      expect(metrics.recorded).toEqual([]);
    });
  });

  it.each([
    ['a receipt without its sentAt', { ...CLAIM }, /sentAt/],
    ['a sentAt that is not an ISO time', { ...CLAIM, sentAt: 'yesterday' }, /sentAt/],
    ['an unknown alert kind', { ...CLAIM, kind: 'OTHER', sentAt: NOW.toISOString() }, /kind/],
    ['a missing claim (an alert that was never claimed)', undefined, /\(event\)/],
  ])('fails on %s, deleting nothing', async (_what, event, message) => {
    const release = makeReleaseAlertClaimHandler({ alertDedup });
    await expect(release(event)).rejects.toThrow(InvalidEventError);
    await expect(release(event)).rejects.toThrow(message);
  });

  it('fails without a dedup store', async () => {
    await expect(makeReleaseAlertClaimHandler({})(alertClaimReceipt(CLAIM, NOW))).rejects.toThrow(MissingAlertDedupError);
  });
});
