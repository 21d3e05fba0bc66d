import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { AlertKind, alertDedupKey, shouldAlertAgain } from '../domain/alert';
import {
  EcrScanSummary,
  EcrScanSummarySchema,
  findingContentHash,
  FindingStatus,
  NormalizedFinding,
  NormalizedFindingSchema,
  Severity,
  severityRank,
  SeveritySchema,
} from '../domain/finding';
import { PolicyException, PolicyExceptionSchema } from '../domain/policy';
import { parseRegistryKey } from '../domain/registry-scope';
import { queryAll } from './paginated-query';
import { KeyPrefix, TableKeys } from './table';

/**
 * Findings, policy exceptions and alert dedup records in the single table.
 *
 * - finding: `FND#<image>` / `<digest>#<vulnerabilityId>`, where `<image>` is the image key of the registry scope
 *   (registry-scope.ts): the bare repository for the hub (and in a single-account deployment), the registry-qualified
 *   `<account>.dkr.ecr.<region>.amazonaws.com/<repository>` for a spoke, so same-named repositories holding the same
 *   digest in two registries never share a record. One partition per image, so the findings of an image (any digest)
 *   are one Query and those of one digest a `begins_with` on it. An ACTIVE finding is also on gsi1
 *   (`FND#OPEN` / `<image>@<digest>#<vulnerabilityId>`); a finding that is closed or suppressed leaves the index. The
 *   record keeps the finding's own `account`, `region` and `repository`.
 * - basic scan summary: `FND#<image>` / `SCAN#<digest>`.
 * - exception: `EXC#<vulnerabilityId>` / `<image pattern>`, listed on gsi1 `EXCEPTIONS`; kept after it expires (the
 *   policy ignores it, a report still shows it) and removed by TTL 90 days later.
 * - alert dedup: `ALERT#<kind>#<digest>#<vulnerabilityId>` / `ALERT`, with the TTL attribute `expiresAt`.
 */

const OPEN_FINDINGS = `${KeyPrefix.FINDING}OPEN`;
const EXCEPTIONS = 'EXCEPTIONS';
const SCAN = 'SCAN#';
const ALERT_SORT_KEY = 'ALERT';
/** A finding keeps its last status and severity changes; older ones are dropped so the item stays small. */
export const MAX_FINDING_HISTORY = 50;
const EXCEPTION_RETENTION_SECONDS = 90 * 86_400;
const MAX_WRITE_ATTEMPTS = 8;

export const FindingChange = {
  /** First time this (digest, vulnerability) is seen. */
  NEW: 'NEW',
  /** Status or severity changed: a history entry was appended (closed, re-opened, escalated). */
  CHANGED: 'CHANGED',
  /** Only timestamps or vendor text changed (Inspector re-sends): the record is refreshed, no history entry. */
  UNCHANGED: 'UNCHANGED',
  /** Older than the stored record (events arrive out of order): nothing written. */
  STALE: 'STALE',
} as const;
export type FindingChange = (typeof FindingChange)[keyof typeof FindingChange];

export const FindingHistoryEntrySchema = z.object({ status: z.enum(FindingStatus), severity: SeveritySchema, at: z.string() });
export type FindingHistoryEntry = z.infer<typeof FindingHistoryEntrySchema>;

export const StoredFindingSchema = NormalizedFindingSchema.extend({
  contentHash: z.string(),
  history: z.array(FindingHistoryEntrySchema),
  revision: z.number().int().min(1),
});
export type StoredFinding = z.infer<typeof StoredFindingSchema>;

export interface RecordFindingResult {
  readonly change: FindingChange;
  readonly finding: StoredFinding;
  /** The record before this write; undefined for a NEW finding. */
  readonly previous?: StoredFinding;
}

export class CorruptFindingRecordError extends Error {
  public readonly code = 'CORRUPT_FINDING_RECORD';
  public constructor(key: string, options?: { cause?: unknown }) {
    super(`the stored record ${key} does not match the finding schema`, options);
    this.name = 'CorruptFindingRecordError';
  }
}

/** Another writer kept changing the record between our read and our conditional write. */
export class FindingWriteConflictError extends Error {
  public readonly code = 'FINDING_WRITE_CONFLICT';
  public constructor(key: string, options?: { cause?: unknown }) {
    super(`the finding ${key} changed under ${MAX_WRITE_ATTEMPTS} consecutive writes; retry the event`, options);
    this.name = 'FindingWriteConflictError';
  }
}

/** The finding's image key names another registry or repository than the finding itself. */
export class FindingImageMismatchError extends Error {
  public readonly code = 'FINDING_IMAGE_MISMATCH';
  public constructor(public readonly image: string, finding: { account: string; region: string; repository: string }) {
    super(
      `the image key ${image} does not name the repository ${finding.repository} of account ${finding.account} in ${finding.region}: ` +
        'a finding is keyed by its bare repository (hub, single account) or its registry-qualified one (spoke)',
    );
    this.name = 'FindingImageMismatchError';
  }
}

/**
 * Refuses to key a finding or scan summary under another image than its own: a bare key must be its repository, a
 * registry-qualified one its account, region and repository. Whether an account is the hub or a spoke is the registry
 * scope's to say (callers derive the key with RegistryScope.keyOf): a single-account deployment keys every account bare.
 */
function checkImageKey(image: string, finding: { account: string; region: string; repository: string }): void {
  const qualified = parseRegistryKey(image);
  const matches = qualified
    ? qualified.account === finding.account && qualified.region === finding.region && qualified.repository === finding.repository
    : image === finding.repository;
  if (!matches) throw new FindingImageMismatchError(image, finding);
}

/** `image`: the image key of the registry scope (see the file comment). */
export function findingPartitionKey(image: string): string {
  return `${KeyPrefix.FINDING}${image}`;
}

export function findingSortKey(digest: string, vulnerabilityId: string): string {
  return `${digest}#${vulnerabilityId}`;
}

type Item = Record<string, unknown>;

function stripKeys(item: Item): Item {
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, expiresAt: _ttl, ...rest } = item;
  return rest;
}

interface StoreProps {
  readonly client: DynamoDBClient;
  readonly tableName: string;
}

function documentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** Findings with their status history (see the file comment for the keys). */
export class FindingStore {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: StoreProps) {
    this.doc = documentClient(props.client);
  }

  /**
   * Records a finding. A closed finding closes and leaves the open index; a re-opened one re-opens; a severity change
   * is kept in the history. The write is conditional on the revision read, so two concurrent events cannot lose one
   * another's history entry. `image` is the finding's image key (`RegistryScope.keyOf(account, region, repository)`).
   */
  public async record(image: string, finding: NormalizedFinding): Promise<RecordFindingResult> {
    checkImageKey(image, finding);
    const key = { pk: findingPartitionKey(image), sk: findingSortKey(finding.digest, finding.vulnerabilityId) };
    const contentHash = findingContentHash(finding);
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }));
      const previous = out.Item ? this.parse(out.Item, `${key.pk}/${key.sk}`) : undefined;
      if (previous && Date.parse(finding.updatedAt) < Date.parse(previous.updatedAt)) {
        return { change: FindingChange.STALE, finding: previous, previous };
      }
      const changed = previous === undefined || previous.status !== finding.status || previous.severity !== finding.severity;
      const history = previous ? [...previous.history] : [];
      if (changed) history.push({ status: finding.status, severity: finding.severity, at: finding.updatedAt });
      const stored: StoredFinding = {
        ...finding,
        // The first sighting stays the first, whatever a re-sent event says.
        firstObservedAt: previous && previous.firstObservedAt < finding.firstObservedAt ? previous.firstObservedAt : finding.firstObservedAt,
        contentHash,
        history: history.slice(-MAX_FINDING_HISTORY),
        revision: (previous?.revision ?? 0) + 1,
      };
      const open = finding.status === FindingStatus.ACTIVE;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.props.tableName,
            Item: {
              ...key,
              ...(open && { gsi1pk: OPEN_FINDINGS, gsi1sk: `${image}@${finding.digest}#${finding.vulnerabilityId}` }),
              ...stored,
            },
            ConditionExpression: previous ? '#revision = :revision' : 'attribute_not_exists(pk)',
            ...(previous && { ExpressionAttributeNames: { '#revision': 'revision' }, ExpressionAttributeValues: { ':revision': previous.revision } }),
          }),
        );
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) continue;
        throw error;
      }
      const change = previous === undefined ? FindingChange.NEW : changed ? FindingChange.CHANGED : FindingChange.UNCHANGED;
      return { change, finding: stored, ...(previous && { previous }) };
    }
    throw new FindingWriteConflictError(`${key.pk}/${key.sk}`);
  }

  public async get(image: string, digest: string, vulnerabilityId: string): Promise<StoredFinding | undefined> {
    const key = { pk: findingPartitionKey(image), sk: findingSortKey(digest, vulnerabilityId) };
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }));
    return out.Item ? this.parse(out.Item, `${key.pk}/${key.sk}`) : undefined;
  }

  /** Every finding of one digest of an image (its image key), whatever its status. */
  public async forDigest(image: string, digest: string): Promise<StoredFinding[]> {
    return this.query(findingPartitionKey(image), `${digest}#`);
  }

  /** Every finding of an image (its image key), all digests. */
  public async forImage(image: string): Promise<StoredFinding[]> {
    return this.query(findingPartitionKey(image), 'sha256:');
  }

  /** ACTIVE findings across all images (the gsi1 entry), oldest key first; `limit` caps the result. */
  public async listOpen(limit = 1_000): Promise<StoredFinding[]> {
    const items = await queryAll(
      this.doc,
      {
        TableName: this.props.tableName,
        IndexName: TableKeys.GSI1,
        KeyConditionExpression: 'gsi1pk = :p',
        ExpressionAttributeValues: { ':p': OPEN_FINDINGS },
      },
      limit,
    );
    return items.map((item) => this.parse(item, `${String(item.pk)}/${String(item.sk)}`));
  }

  /** Keeps the latest basic-scanning summary of a digest (basic scanning names no CVE: counts only); `image` as in record. */
  public async recordScan(image: string, summary: EcrScanSummary): Promise<{ stale: boolean }> {
    checkImageKey(image, summary);
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: { pk: findingPartitionKey(image), sk: `${SCAN}${summary.digest}`, ...summary },
          ConditionExpression: 'attribute_not_exists(pk) OR scannedAt <= :at',
          ExpressionAttributeValues: { ':at': summary.scannedAt },
        }),
      );
      return { stale: false };
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return { stale: true };
      throw error;
    }
  }

  public async getScan(image: string, digest: string): Promise<EcrScanSummary | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.props.tableName, Key: { pk: findingPartitionKey(image), sk: `${SCAN}${digest}` }, ConsistentRead: true }),
    );
    if (!out.Item) return undefined;
    const parsed = EcrScanSummarySchema.safeParse(stripKeys(out.Item));
    if (!parsed.success) throw new CorruptFindingRecordError(`${findingPartitionKey(image)}/${SCAN}${digest}`, { cause: parsed.error });
    return parsed.data;
  }

  private async query(pk: string, prefix: string): Promise<StoredFinding[]> {
    const items = await queryAll(this.doc, {
      TableName: this.props.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
      ConsistentRead: true,
    });
    return items.map((item) => this.parse(item, `${pk}/${String(item.sk)}`));
  }

  private parse(item: Item, key: string): StoredFinding {
    const parsed = StoredFindingSchema.safeParse(stripKeys(item));
    if (!parsed.success) throw new CorruptFindingRecordError(key, { cause: parsed.error });
    return parsed.data;
  }
}

export interface StoredException extends PolicyException {
  readonly createdAt: string;
}

export class InvalidExceptionError extends Error {
  public readonly code = 'INVALID_EXCEPTION';
  public constructor(public readonly problems: readonly string[], options?: { cause?: unknown }) {
    super(`invalid exception: ${problems.join('; ')}`, options);
    this.name = 'InvalidExceptionError';
  }
}

/** Approved policy exceptions (see the file comment for the keys). */
export class ExceptionStore {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: StoreProps) {
    this.doc = documentClient(props.client);
  }

  /** Adds an exception, replacing one for the same vulnerability and image pattern. Validated before it is written. */
  public async add(input: unknown, now: Date = new Date()): Promise<StoredException> {
    const parsed = PolicyExceptionSchema.safeParse(input);
    if (!parsed.success) {
      throw new InvalidExceptionError(parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(exception)'}: ${i.message}`), { cause: parsed.error });
    }
    const exception = parsed.data;
    const stored: StoredException = { ...exception, createdAt: now.toISOString() };
    await this.doc.send(
      new PutCommand({
        TableName: this.props.tableName,
        Item: {
          pk: `${KeyPrefix.EXCEPTION}${exception.vulnerabilityId}`,
          sk: exception.image,
          gsi1pk: EXCEPTIONS,
          gsi1sk: `${exception.vulnerabilityId}#${exception.image}`,
          // TTL is epoch seconds; the exception's own expiry stays an ISO string in `exception`.
          [TableKeys.TTL_ATTRIBUTE]: Math.floor(Date.parse(exception.expiresAt) / 1000) + EXCEPTION_RETENTION_SECONDS,
          exception: stored,
        },
      }),
    );
    return stored;
  }

  /** Removes an exception; false when there was none. */
  public async remove(vulnerabilityId: string, image: string): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.props.tableName,
          Key: { pk: `${KeyPrefix.EXCEPTION}${vulnerabilityId}`, sk: image },
          ConditionExpression: 'attribute_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /** The exceptions of one vulnerability (expired ones included: the policy decides what still applies). */
  public async forVulnerability(vulnerabilityId: string): Promise<StoredException[]> {
    const items = await queryAll(this.doc, {
      TableName: this.props.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `${KeyPrefix.EXCEPTION}${vulnerabilityId}` },
    });
    return items.map((item) => item.exception as StoredException);
  }

  public async list(): Promise<StoredException[]> {
    const items = await queryAll(this.doc, {
      TableName: this.props.tableName,
      IndexName: TableKeys.GSI1,
      KeyConditionExpression: 'gsi1pk = :p',
      ExpressionAttributeValues: { ':p': EXCEPTIONS },
    });
    return items.map((item) => item.exception as StoredException);
  }
}

export interface AlertClaim {
  readonly digest: string;
  readonly vulnerabilityId: string;
  readonly kind: AlertKind;
  readonly severity: Severity;
}

/**
 * What gives a claim back: the claimed alert and the moment it was claimed (the record's `sentAt`). It travels with
 * the alert through the state machine, so it is parsed again before it is used.
 */
export const AlertClaimReceiptSchema = z.object({
  digest: z.string().min(1),
  vulnerabilityId: z.string().min(1),
  kind: z.enum(AlertKind),
  severity: SeveritySchema,
  sentAt: z.iso.datetime(),
});
export type AlertClaimReceipt = z.infer<typeof AlertClaimReceiptSchema>;

/** The receipt of a claim made at `now`: `sentAt` is what `AlertDedupStore.claim` writes. */
export function alertClaimReceipt(claim: AlertClaim, now: Date): AlertClaimReceipt {
  return { digest: claim.digest, vulnerabilityId: claim.vulnerabilityId, kind: claim.kind, severity: claim.severity, sentAt: now.toISOString() };
}

/**
 * One alert per (image digest, vulnerability, kind) within the dedup window; a severity escalation alerts again.
 * The claim is one conditional write, so concurrent executions for the same finding send one alert between them.
 */
export class AlertDedupStore {
  private readonly doc: DynamoDBDocumentClient;

  public constructor(private readonly props: StoreProps & { readonly windowSeconds: number }) {
    if (!(Number.isInteger(props.windowSeconds) && props.windowSeconds > 0)) {
      throw new RangeError(`windowSeconds must be a positive integer, got ${props.windowSeconds}`);
    }
    this.doc = documentClient(props.client);
  }

  /** True when this alert is to be sent now (and is recorded as sent); false when it was sent within the window. */
  public async claim(alert: AlertClaim, now: Date): Promise<boolean> {
    const key = alertDedupRecordKey(alert);
    const nowSeconds = Math.floor(now.getTime() / 1000);
    const out = await this.doc.send(new GetCommand({ TableName: this.props.tableName, Key: key, ConsistentRead: true }));
    // TTL deletes lazily (within days): an expired record is treated as gone.
    const previous = out.Item && Number(out.Item[TableKeys.TTL_ATTRIBUTE]) > nowSeconds ? { severity: out.Item.severity as Severity } : undefined;
    if (!shouldAlertAgain(previous, alert)) return false;
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.props.tableName,
          Item: {
            ...key,
            severity: alert.severity,
            severityRank: severityRank(alert.severity),
            sentAt: alertClaimReceipt(alert, now).sentAt,
            [TableKeys.TTL_ATTRIBUTE]: nowSeconds + this.props.windowSeconds,
          },
          // The same rule as shouldAlertAgain, checked atomically: absent, expired, or a lower severity was sent.
          ConditionExpression: 'attribute_not_exists(pk) OR #ttl <= :now OR severityRank < :rank',
          ExpressionAttributeNames: { '#ttl': TableKeys.TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': nowSeconds, ':rank': severityRank(alert.severity) },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  /**
   * Gives a claim back when its alert could not be delivered, so that the next event alerts again. Deletes the record
   * only while it is still this claim (same `sentAt` and severity): a newer claim, by another execution or an
   * escalation, stays. True when the record was deleted; false when it was gone or is another claim (idempotent).
   */
  public async release(receipt: AlertClaimReceipt): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.props.tableName,
          Key: alertDedupRecordKey(receipt),
          ConditionExpression: '#sentAt = :sentAt AND #severity = :severity',
          ExpressionAttributeNames: { '#sentAt': 'sentAt', '#severity': 'severity' },
          ExpressionAttributeValues: { ':sentAt': receipt.sentAt, ':severity': receipt.severity },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}

function alertDedupRecordKey(alert: Pick<AlertClaim, 'digest' | 'vulnerabilityId' | 'kind'>): { pk: string; sk: string } {
  return { pk: `${KeyPrefix.ALERT}${alertDedupKey(alert.digest, alert.vulnerabilityId, alert.kind)}`, sk: ALERT_SORT_KEY };
}
