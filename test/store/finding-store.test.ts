import { GetCommand, DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { AlertKind, alertDedupKey } from '../../lambdas/domain/alert';
import { NormalizedFinding, parseEcrScanEvent, parseInspectorFindingEvent } from '../../lambdas/domain/finding';
import { registryHost, RegistryScope } from '../../lambdas/domain/registry-scope';
import { AlertDedupStore, alertClaimReceipt, ExceptionStore, FindingChange, FindingImageMismatchError, FindingStore, InvalidExceptionError, MAX_FINDING_HISTORY } from '../../lambdas/store/finding-store';
import { startTestTable } from '../support/dynamodb';
import { digestFor, findingEvent, findingEventIn, SCAN_SAMPLE_LAMBDA_GO, SEED_CVE } from '../support/finding-events';
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
async function openIndexHas(f: NormalizedFinding, image = f.repository): Promise<boolean> {
  const out = await doc.send(
    new QueryCommand({
      TableName: emulator.tableName,
      IndexName: 'gsi1',
      KeyConditionExpression: 'gsi1pk = :p AND gsi1sk = :s',
      ExpressionAttributeValues: { ':p': 'FND#OPEN', ':s': `${image}@${f.digest}#${f.vulnerabilityId}` },
    }),
  );
  return (out.Items ?? []).length === 1;
}

describe('Class: FindingStore', () => {
  describe('Method: record', () => {
    it('stores a new finding with its first history entry and lists it as open', async () => {
      const store = new FindingStore(props());
      const f = finding();
      const result = await store.record(f.repository, f);
      expect(result.change).toBe(FindingChange.NEW);
      expect(result.finding.history).toEqual([{ status: 'ACTIVE', severity: 'HIGH', at: f.updatedAt }]);
      expect(await store.get(f.repository, f.digest, SEED_CVE)).toMatchObject({ vulnerabilityId: SEED_CVE, digest: f.digest, revision: 1 });
      expect(await openIndexHas(f)).toBe(true);
    });

    it('refreshes a re-sent finding whose timestamps alone changed, without a history entry', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f.repository, f);
      const resent = later(f, {});
      const result = await store.record(resent.repository, resent);
      expect(result.change).toBe(FindingChange.UNCHANGED);
      expect(result.finding.history).toHaveLength(1);
      expect(result.finding.lastObservedAt).toBe(resent.lastObservedAt);
      expect(result.finding.contentHash).toBe(result.previous!.contentHash);
    });

    it('closes a closed finding (out of the open index) and re-opens it, appending history each time', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f.repository, f);
      const closed = later(f, { status: 'CLOSED' });
      expect((await store.record(closed.repository, closed)).change).toBe(FindingChange.CHANGED);
      expect(await openIndexHas(f)).toBe(false);
      const reopened = later(closed, { status: 'ACTIVE', severity: 'CRITICAL' });
      const result = await store.record(reopened.repository, reopened);
      expect(result.change).toBe(FindingChange.CHANGED);
      expect(result.finding.history.map((h) => `${h.status}/${h.severity}`)).toEqual(['ACTIVE/HIGH', 'CLOSED/HIGH', 'ACTIVE/CRITICAL']);
      expect(await openIndexHas(f)).toBe(true);
      expect(result.finding.firstObservedAt).toBe(f.firstObservedAt);
    });

    it('refuses to go back in time: an older event than the stored one is STALE and writes nothing', async () => {
      const store = new FindingStore(props());
      const f = finding();
      const newer = later(f, { status: 'CLOSED' });
      await store.record(newer.repository, newer);
      const result = await store.record(f.repository, f);
      expect(result.change).toBe(FindingChange.STALE);
      expect((await store.get(f.repository, f.digest, SEED_CVE))!.status).toBe('CLOSED');
    });

    it('loses no history entry among concurrent status changes (conditional write on the revision)', async () => {
      const store = new FindingStore(props());
      const f = finding();
      await store.record(f.repository, f);
      const changes = Array.from({ length: 6 }, (_, i) => later(f, { status: i % 2 === 0 ? 'CLOSED' : 'ACTIVE', severity: i % 3 === 0 ? 'CRITICAL' : 'HIGH' }, i + 1));
      const results = await Promise.all(changes.map((c) => store.record(c.repository, c)));
      const applied = results.filter((r) => r.change !== FindingChange.STALE);
      const stored = (await store.get(f.repository, f.digest, SEED_CVE))!;
      // Every write that was not refused as stale is counted; none overwrote another unseen.
      expect(stored.revision).toBe(1 + applied.length);
      expect(stored.history).toHaveLength(1 + applied.filter((r) => r.change === FindingChange.CHANGED).length);
    });

    it('caps the history at its last entries', async () => {
      const store = new FindingStore(props());
      let f = finding();
      await store.record(f.repository, f);
      for (let i = 0; i < MAX_FINDING_HISTORY + 5; i++) {
        f = later(f, { status: f.status === 'ACTIVE' ? 'CLOSED' : 'ACTIVE' }, 1);
        await store.record(f.repository, f);
      }
      expect((await store.get(f.repository, f.digest, SEED_CVE))!.history).toHaveLength(MAX_FINDING_HISTORY);
    });
  });

  describe('Method: forDigest', () => {
    it('returns the findings of one digest only, and forImage those of every digest', async () => {
      const store = new FindingStore(props());
      const a = finding({ tag: 'one' });
      const b = parseInspectorFindingEvent(findingEvent({ repository: a.repository, tag: 'two', at: '2024-01-02T00:00:00Z' }));
      const c = parseInspectorFindingEvent(findingEvent({ repository: a.repository, tag: 'one', vulnerabilityId: 'CVE-2024-6119', at: '2024-01-02T00:00:00Z' }));
      for (const f of [a, b, c]) await store.record(f.repository, f);
      expect((await store.forDigest(a.repository, a.digest)).map((f) => f.vulnerabilityId).sort()).toEqual(['CVE-2023-38545', 'CVE-2024-6119']);
      expect(await store.forImage(a.repository)).toHaveLength(3);
    });
  });

  describe('Method: recordScan', () => {
    it('keeps the latest basic-scan summary of a digest and ignores an older one', async () => {
      const store = new FindingStore(props());
      const summary = parseEcrScanEvent(structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)));
      expect(await store.recordScan(summary.repository, summary)).toEqual({ stale: false });
      expect(await store.recordScan(summary.repository, { ...summary, scannedAt: '2019-01-01T00:00:00.000Z', total: 0 })).toEqual({ stale: true });
      expect(await store.getScan(summary.repository, summary.digest)).toEqual(summary);
    });
  });

  describe('Method: record (hub and spoke registries)', () => {
    const HUB = { account: '111111111111', region: 'eu-west-1' };
    const SPOKE = { account: '222222222222', region: 'eu-west-1' };
    const SPOKE_APP = `${registryHost(SPOKE.account, SPOKE.region)}/app`;
    const scope = RegistryScope.of({ hub: HUB, spokes: [SPOKE] });
    let digests = 0;
    /** The seed CVE on `app` at one digest, as the Inspector2 of the hub and of the spoke report it. */
    function sameImageIn(): { hub: NormalizedFinding; spoke: NormalizedFinding } {
      const change = { repository: 'app', digest: digestFor(`registry-scope-${++digests}`), at: '2024-01-01T00:00:00Z' };
      return { hub: parseInspectorFindingEvent(findingEventIn(HUB, change)), spoke: parseInspectorFindingEvent(findingEventIn(SPOKE, change)) };
    }
    const keyOf = (f: NormalizedFinding): string => scope.keyOf(f.account, f.region, f.repository);

    it('keeps a hub and a spoke repository of the same name apart when they hold the same digest and CVE', async () => {
      const store = new FindingStore(props());
      const { hub, spoke } = sameImageIn();
      expect(keyOf(hub)).toBe('app');
      expect(keyOf(spoke)).toBe(SPOKE_APP);

      expect((await store.record(keyOf(hub), hub)).change).toBe(FindingChange.NEW);
      expect((await store.record(keyOf(spoke), spoke)).change).toBe(FindingChange.NEW);

      // Each record says where it came from, and each image's queries return its own only.
      expect(await store.get('app', hub.digest, SEED_CVE)).toMatchObject({ account: HUB.account, region: HUB.region, repository: 'app' });
      expect(await store.get(SPOKE_APP, spoke.digest, SEED_CVE)).toMatchObject({ account: SPOKE.account, region: SPOKE.region, repository: 'app' });
      expect((await store.forDigest('app', hub.digest)).map((f) => f.account)).toEqual([HUB.account]);
      expect((await store.forImage(SPOKE_APP)).map((f) => f.account)).toEqual([SPOKE.account]);
      expect(await openIndexHas(hub, 'app')).toBe(true);
      expect(await openIndexHas(spoke, SPOKE_APP)).toBe(true);

      // Closing the spoke's leaves the hub's open (and the other way round).
      const closed = later(spoke, { status: 'CLOSED' });
      expect((await store.record(SPOKE_APP, closed)).change).toBe(FindingChange.CHANGED);
      expect((await store.get(SPOKE_APP, spoke.digest, SEED_CVE))!.status).toBe('CLOSED');
      expect(await store.get('app', hub.digest, SEED_CVE)).toMatchObject({ status: 'ACTIVE', revision: 1, history: [{ status: 'ACTIVE', severity: 'HIGH', at: hub.updatedAt }] });
      expect(await openIndexHas(spoke, SPOKE_APP)).toBe(false);
      expect(await openIndexHas(hub, 'app')).toBe(true);
      const open = (await store.listOpen(10_000)).filter((f) => f.digest === hub.digest);
      expect(open.map((f) => keyOf(f))).toEqual(['app']);
    });

    it('keeps the hub’s keys as they were (a bare repository) and qualifies the spoke’s', async () => {
      const store = new FindingStore(props());
      const { hub, spoke } = sameImageIn();
      await store.record(keyOf(hub), hub);
      await store.record(keyOf(spoke), spoke);
      const raw = async (pk: string): Promise<Record<string, unknown> | undefined> =>
        (await doc.send(new GetCommand({ TableName: emulator.tableName, Key: { pk, sk: `${hub.digest}#${SEED_CVE}` } }))).Item;
      expect(await raw('FND#app')).toMatchObject({ account: HUB.account, gsi1pk: 'FND#OPEN', gsi1sk: `app@${hub.digest}#${SEED_CVE}` });
      expect(await raw(`FND#${SPOKE_APP}`)).toMatchObject({ account: SPOKE.account, gsi1pk: 'FND#OPEN', gsi1sk: `${SPOKE_APP}@${hub.digest}#${SEED_CVE}` });
    });

    it('keys the basic-scan summaries of same-named repositories by registry', async () => {
      const store = new FindingStore(props());
      const sample = parseEcrScanEvent(structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)));
      const digest = digestFor(`registry-scope-scan-${++digests}`);
      const hub = { ...sample, ...HUB, repository: 'app', digest };
      const spoke = { ...sample, ...SPOKE, repository: 'app', digest, total: 0, scannedAt: '2019-01-01T00:00:00.000Z' };
      expect(await store.recordScan('app', hub)).toEqual({ stale: false });
      // Older than the hub's summary, yet not stale: it is another image's.
      expect(await store.recordScan(SPOKE_APP, spoke)).toEqual({ stale: false });
      expect(await store.getScan('app', digest)).toEqual(hub);
      expect(await store.getScan(SPOKE_APP, digest)).toEqual(spoke);
    });

    // A bare key is any account's in a single-account deployment: only RegistryScope.keyOf tells a spoke's apart.
    it.each([
      ['a hub finding under the spoke’s key', 'hub', SPOKE_APP],
      ['a finding under another repository', 'hub', 'apps/other'],
      ['a finding under another region of its account', 'spoke', `${registryHost(SPOKE.account, 'us-east-1')}/app`],
    ] as const)('fails to key %s, writing nothing', async (_name, which, image) => {
      const store = new FindingStore(props());
      const f = sameImageIn()[which];
      await expect(store.record(image, f)).rejects.toThrow(FindingImageMismatchError);
      await expect(store.record(image, f)).rejects.toThrow(`the image key ${image} does not name the repository app of account ${f.account} in ${f.region}`);
      await expect(store.recordScan(image, { ...parseEcrScanEvent(structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO))), account: f.account, region: f.region, repository: 'app' })).rejects.toThrow(
        FindingImageMismatchError,
      );
      // This digest is recorded nowhere (other tests' records share the table).
      expect(await store.forDigest(image, f.digest)).toEqual([]);
      expect(await store.forDigest(keyOf(f), f.digest)).toEqual([]);
      expect(await store.getScan(image, f.digest)).toBeUndefined();
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

  describe('Method: release', () => {
    const record = async (vulnerabilityId: string, kind: AlertKind = AlertKind.UPSTREAM_VULNERABLE): Promise<Record<string, unknown> | undefined> =>
      (await doc.send(new GetCommand({ TableName: emulator.tableName, Key: { pk: `ALERT#${alertDedupKey(digest, vulnerabilityId, kind)}`, sk: 'ALERT' }, ConsistentRead: true }))).Item;

    it('gives its own claim back, so that the same alert is sent again within the window', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0101', kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH' as const };
      expect(await store.claim(alert, now)).toBe(true);
      expect(await store.release(alertClaimReceipt(alert, now))).toBe(true);
      expect(await record('CVE-2024-0101')).toBeUndefined();
      const retried = new Date(now.getTime() + 60_000);
      expect(await store.claim(alert, retried)).toBe(true);
      expect((await record('CVE-2024-0101'))!.sentAt).toBe(retried.toISOString());
    });

    it('keeps a newer claim by another execution', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0102', kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH' as const };
      expect(await store.claim(alert, now)).toBe(true);
      expect(await store.release(alertClaimReceipt(alert, now))).toBe(true);
      const newer = new Date(now.getTime() + 60_000);
      expect(await store.claim(alert, newer)).toBe(true);
      // The first execution's Catch runs again (a retried release): the newer claim is not its to give back.
      expect(await store.release(alertClaimReceipt(alert, now))).toBe(false);
      expect((await record('CVE-2024-0102'))!.sentAt).toBe(newer.toISOString());
      expect(await store.claim(alert, new Date(newer.getTime() + 60_000))).toBe(false);
    });

    it('keeps an escalation claimed in the same instant', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0103', kind: AlertKind.REBUILD_STARTED, severity: 'HIGH' as const };
      expect(await store.claim(alert, now)).toBe(true);
      expect(await store.claim({ ...alert, severity: 'CRITICAL' }, now)).toBe(true);
      expect(await store.release(alertClaimReceipt(alert, now))).toBe(false);
      expect((await record('CVE-2024-0103', AlertKind.REBUILD_STARTED))!.severity).toBe('CRITICAL');
    });

    it('is idempotent: a second release, or one with no record, deletes nothing and does not fail', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      const alert = { digest, vulnerabilityId: 'CVE-2024-0104', kind: AlertKind.VENDOR_VULNERABLE, severity: 'MEDIUM' as const };
      expect(await store.release(alertClaimReceipt(alert, now))).toBe(false);
      expect(await store.claim(alert, now)).toBe(true);
      const receipt = alertClaimReceipt(alert, now);
      expect(await Promise.all([store.release(receipt), store.release(receipt)])).toEqual(expect.arrayContaining([true, false]));
      expect(await store.release(receipt)).toBe(false);
      expect(await record('CVE-2024-0104', AlertKind.VENDOR_VULNERABLE)).toBeUndefined();
    });

    it('refuses a receipt whose dedup key is not a digest', async () => {
      const store = new AlertDedupStore({ ...props(), windowSeconds: 3600 });
      await expect(store.release({ digest: 'latest', vulnerabilityId: SEED_CVE, kind: AlertKind.UPSTREAM_VULNERABLE, severity: 'HIGH', sentAt: now.toISOString() })).rejects.toThrow(/not an image digest/);
    });
  });
});
