import { GetCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { AlertKind, alertDedupKey } from '../../lambdas/domain/alert';
import { NormalizedFinding, parseEcrScanEvent, parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import { AlertDedupStore, ExceptionStore, FindingChange, FindingStore, InvalidExceptionError, MAX_FINDING_HISTORY } from '../../lambdas/store/finding-store';
import { startTestTable } from '../support/dynamodb';
import { findingEvent, SCAN_SAMPLE_LAMBDA_GO, SEED_CVE } from '../support/finding-events';
import { sampleEvent } from '../support/template';

type Emulator = Awaited<ReturnType<typeof startTestTable>>;
let emulator: Emulator;
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  emulator = await startTestTable();
  doc = DynamoDBDocumentClient.from(emulator.client);
});
afterAll(async () => {
  await emulator.stop();
});

const props = (): { client: Emulator['client']; tableName: string } => ({ client: emulator.client, tableName: emulator.tableName });
let images = 0;
/** A finding on an image of its own, so tests do not share records. */
function finding(change: Partial<Parameters<typeof findingEvent>[0]> = {}): NormalizedFinding {
  return parseInspectorFindingEvent(findingEvent({ repository: `apps/store-test-${++images}`, at: '2024-01-01T00:00:00Z', ...change }));
}
function later(f: NormalizedFinding, change: Partial<NormalizedFinding>, minutes = 5): NormalizedFinding {
  const at = new Date(Date.parse(f.updatedAt) + minutes * 60_000).toISOString();
  return { ...f, lastObservedAt: at, updatedAt: at, ...change };
}
async function openIndexHas(f: NormalizedFinding): Promise<boolean> {
  const out = await doc.send(
    new QueryCommand({
      TableName: emulator.tableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p AND gsi1sk = :s',
      ExpressionAttributeValues: { ':p': 'FND#OPEN', ':s': `${f.repository}@${f.digest}#${f.vulnerabilityId}` },
    }),
  );
  return (out.Items ?? []).length === 1;
}

describe('Class: FindingStore', () => {
  describe('Method: record', () => {
    it('stores a new finding with its first history entry and lists it as open', async () => {
      const store = new FindingStore(props());
      const f = finding();
      const result = await store.record(f);
      expect(result.change).toBe(FindingChange.NEW);
      expect(result.finding.history).toEqual([{ status: 'ACTIVE', severity: 'HIGH', at: f.updatedAt }]);
      expect(await store.get(f.repository, f.digest, SEED_CVE)).toMatchObject({ vulnerabilityId: SEED_CVE, digest: f.digest, revision: 1 });
      expect(await openIndexHas(f)).toBe(true);
    });

    it('refreshes a re-sent finding whose timestamps alone changed, without a history entry', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f);
      const resent = later(f, {});
      const result = await store.record(resent);
      expect(result.change).toBe(FindingChange.UNCHANGED);
      expect(result.finding.history).toHaveLength(1);
      expect(result.finding.lastObservedAt).toBe(resent.lastObservedAt);
      expect(result.finding.contentHash).toBe(result.previous!.contentHash);
    });

    it('closes a closed finding (out of the open index) and re-opens it, appending history each time', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f);
      const closed = later(f, { status: 'CLOSED' });
      expect((await store.record(closed)).change).toBe(FindingChange.CHANGED);
      expect(await openIndexHas(f)).toBe(false);
      const reopened = later(closed, { status: 'ACTIVE', severity: 'CRITICAL' });
      const result = await store.record(reopened);
      expect(result.change).toBe(FindingChange.CHANGED);
      expect(result.finding.history.map((h) => `${h.status}/${h.severity}`)).toEqual(['ACTIVE/HIGH', 'CLOSED/HIGH', 'ACTIVE/CRITICAL']);
      expect(await openIndexHas(f)).toBe(true);
      expect(result.finding.firstObservedAt).toBe(f.firstObservedAt);
    });

    it('refuses to go back in time: an older event than the stored one is STALE and writes nothing', async () => {
      const store = new FindingStore(props());
      const f = finding();
      const newer = later(f, { status: 'CLOSED' });
      await store.record(newer);
      const result = await store.record(f);
      expect(result.change).toBe(FindingChange.STALE);
      expect((await store.get(f.repository, f.digest, SEED_CVE))!.status).toBe('CLOSED');
    });

    it('loses no history entry among concurrent status changes (conditional write on the revision)', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f);
      const changes = Array.from({ length: 6 }, (_, i) => later(f, { status: i % 2 === 0 ? 'CLOSED' : 'ACTIVE', severity: i % 3 === 0 ? 'CRITICAL' : 'HIGH' }, i + 1));
      const results = await Promise.all(changes.map((c) => store.record(c)));
      const applied = results.filter((r) => r.change !== FindingChange.STALE);
      const stored = (await store.get(f.repository, f.digest, SEED_CVE))!;
      // Every write that was not refused as stale is counted; none overwrote another unseen.
      expect(stored.revision).toBe(1 + applied.length);
      expect(stored.history).toHaveLength(1 + applied.filter((r) => r.change === FindingChange.CHANGED).length);
    });

    it('caps the history at its last entries', async () => {
      const store = new FindingStore(props());
      let f = finding();
      await store.record(f);
      for (let i = 0; i < MAX_FINDING_HISTORY + 5; i++) {
        f = later(f, { status: f.status === 'ACTIVE' ? 'CLOSED' : 'ACTIVE' }, 1);
        await store.record(f);
      }
      expect((await store.get(f.repository, f.digest, SEED_CVE))!.history).toHaveLength(MAX_FINDING_HISTORY);
    });
  });

  describe('Method: forDigest', () => {
    it('returns the findings of one digest only, and forRepository those of every digest', async () => {
      const store = new FindingStore(props());
      const a = finding({ tag: 'one' });
      const b = parseInspectorFindingEvent(findingEvent({ repository: a.repository, tag: 'two', at: '2024-01-02T00:00:00Z' }));
      const c = parseInspectorFindingEvent(findingEvent({ repository: a.repository, tag: 'one', vulnerabilityId: 'CVE-2024-6119', at: '2024-01-02T00:00:00Z' }));
      for (const f of [a, b, c]) await store.record(f);
      expect((await store.forDigest(a.repository, a.digest)).map((f) => f.vulnerabilityId).sort()).toEqual(['CVE-2023-38545', 'CVE-2024-6119']);
      expect(await store.forRepository(a.repository)).toHaveLength(3);
    });
  });

  describe('Method: recordScan', () => {
    it('keeps the latest basic-scan summary of a digest and ignores an older one', async () => {
      const store = new FindingStore(props());
      const summary = parseEcrScanEvent(structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)));
      expect(await store.recordScan(summary)).toEqual({ stale: false });
      expect(await store.recordScan({ ...summary, scannedAt: '2019-01-01T00:00:00.000Z', total: 0 })).toEqual({ stale: true });
      expect(await store.getScan(summary.repository, summary.digest)).toEqual(summary);
    });
  });
});

describe('Class: ExceptionStore', () => {
  const exception = { image: 'apps/*', vulnerabilityId: SEED_CVE, reason: 'not reachable: curl is not used at runtime', approver: 'security-lead', expiresAt: '2030-01-01T00:00:00Z' };

  describe('Method: add', () => {
    it('stores, lists, finds by vulnerability and removes an exception', async () => {
      const store = new ExceptionStore(props());
      await store.add(exception, new Date('2024-01-01T00:00:00Z'));
      await store.add({ ...exception, vulnerabilityId: 'CVE-2024-6119' });
      expect(await store.forVulnerability(SEED_CVE)).toEqual([{ ...exception, createdAt: '2024-01-01T00:00:00.000Z' }]);
      expect((await store.list()).map((e) => e.vulnerabilityId).sort()).toEqual(['CVE-2023-38545', 'CVE-2024-6119']);
      expect(await store.remove(SEED_CVE, 'apps/*')).toBe(true);
      expect(await store.remove(SEED_CVE, 'apps/*')).toBe(false);
      expect(await store.forVulnerability(SEED_CVE)).toEqual([]);
      await store.remove('CVE-2024-6119', 'apps/*');
    });

    it('sets the TTL 90 days after the expiry, so an expired exception stays visible for a while', async () => {
      const store = new ExceptionStore(props());
      await store.add({ ...exception, image: 'apps/ttl' });
      const out = await doc.send(new GetCommand({ TableName: emulator.tableName, Key: { pk: `EXC#${SEED_CVE}`, sk: 'apps/ttl' } }));
      expect(out.Item!.expiresAt).toBe(Date.parse(exception.expiresAt) / 1000 + 90 * 86_400);
      await store.remove(SEED_CVE, 'apps/ttl');
    });

    it.each([
      ['refuses an exception without an expiry', { ...exception, expiresAt: undefined }, /expiresAt/],
      ['refuses an exception without an approver', { ...exception, approver: '' }, /approver/],
      ['refuses an injection string as the image pattern', { ...exception, image: 'apps/$(rm -rf /)' }, /image/],
      ['refuses an unknown field', { ...exception, scope: 'all' }, /scope|Unrecognized/],
    ])('%s', async (_name, input, message) => {
      const store = new ExceptionStore(props());
      await expect(store.add(input)).rejects.toThrow(InvalidExceptionError);
      await expect(store.add(input)).rejects.toThrow(message);
    });
  });
});

describe('Class: AlertDedupStore', () => {
  const digest = `sha256:${'d'.repeat(64)}`;
  const now = new Date('2024-03-01T00:00:00Z');

  describe('Method: claim', () => {
    it('sends one alert per (digest, vulnerability, kind) within the window', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0001', kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH' as const };
      expect(await store.claim(alert, now)).toBe(true);
      expect(await store.claim(alert, new Date(now.getTime() + 60_000))).toBe(false);
      expect(await store.claim({ ...alert, kind: AlertKind.VENDOR_VULNERABLE }, now)).toBe(true);
      expect(await store.claim({ ...alert, severity: 'MEDIUM' }, now)).toBe(false);
      const out = await doc.send(new GetCommand({ TableName: emulator.tableName, Key: { pk: `ALERT#${alertDedupKey(digest, 'CVE-2024-0001', 'UPSTREAM_VULNERABLE')}`, sk: 'ALERT' } }));
      expect(out.Item!.expiresAt).toBe(now.getTime() / 1000 + 3600);
    });

    it('alerts again on a severity escalation, and once the window has passed', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0002', kind: AlertKind.REBUILD_STARTED, severity: 'HIGH' as const };
      expect(await store.claim(alert, now)).toBe(true);
      expect(await store.claim({ ...alert, severity: 'CRITICAL' }, now)).toBe(true);
      expect(await store.claim({ ...alert, severity: 'CRITICAL' }, now)).toBe(false);
      expect(await store.claim({ ...alert, severity: 'CRITICAL' }, new Date(now.getTime() + 3601_000))).toBe(true);
    });

    it('lets exactly one of many concurrent claims through', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0003', kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH' as const };
      const results = await Promise.all(Array.from({ length: 20 }, () => store.claim(alert, now)));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('refuses a dedup key that is not a digest', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      await expect(store.claim({ digest: 'latest', vulnerabilityId: SEED_CVE, kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH' }, now)).rejects.toThrow(/not an image digest/);
    });

    it('refuses a window that is not a positive whole number of seconds', () => {
      expect(() => new AlertDedupStore({ ...props(), windowSeconds: 0 })).toThrow(RangeError);
    });
  });
});
