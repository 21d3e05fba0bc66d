import { GetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AlertKind, alertDedupKey } from '../../lambdas/domain/alert';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { MissingAlertDedupError } from '../../lambdas/handlers/publishable-alerts';
import { makeReleaseAlertClaimHandler } from '../../lambdas/handlers/release-alert-claim';
import { AlertDedupStore, alertClaimReceipt } from '../../lambdas/store/finding-store';
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
