import { FindingStatus, NormalizedFinding, NormalizedFindingSchema } from './finding';
import { evaluateFinding, Policy, PolicyException, PolicyOutcome, PolicySubject } from './policy';

/**
 * The scheduled rescan's decisions: what a fresh listing of the scanner's findings changes in what is stored (events
 * are missed; closures are often never sent), which findings an expired exception leaves exposed, and which images a
 * basic scan is due for. Pure: the handler lists, stores and acts.
 */

export interface Reconciliation {
  /** Listed now, never stored: a missed event. */
  readonly missed: readonly NormalizedFinding[];
  /** Stored closed or suppressed, listed active again. */
  readonly reopened: readonly NormalizedFinding[];
  /** Stored active, no longer listed for an image digest that was listed: closed (written with status CLOSED). */
  readonly closed: readonly NormalizedFinding[];
  /** Listed and stored, severity changed. */
  readonly changed: readonly NormalizedFinding[];
  readonly unchanged: number;
}

export interface ReconcileInput {
  /** What the store holds for the images listed (stored records may carry extra fields; they are dropped). */
  readonly stored: readonly NormalizedFinding[];
  /** What the scanner lists now (active findings). */
  readonly fresh: readonly NormalizedFinding[];
  /** Image digests the listing covered: a stored finding of any other digest is left alone. */
  readonly digests: ReadonlySet<string>;
  readonly now: Date;
}

const FINDING_FIELDS = Object.keys(NormalizedFindingSchema.shape);

function findingKey(f: Pick<NormalizedFinding, 'repository' | 'digest' | 'vulnerabilityId'>): string {
  return `${f.repository}@${f.digest}#${f.vulnerabilityId}`;
}

/** The normalized part of a stored record (no content hash, history or revision). */
function normalized(stored: NormalizedFinding): NormalizedFinding {
  const record = stored as unknown as Record<string, unknown>;
  return Object.fromEntries(FINDING_FIELDS.filter((k) => record[k] !== undefined).map((k) => [k, record[k]])) as NormalizedFinding;
}

function later(a: string, b: string): string {
  return Date.parse(a) >= Date.parse(b) ? a : b;
}

export function reconcileFindings(input: ReconcileInput): Reconciliation {
  const stored = new Map(input.stored.map((s) => [findingKey(s), s]));
  const missed: NormalizedFinding[] = [];
  const reopened: NormalizedFinding[] = [];
  const changed: NormalizedFinding[] = [];
  let unchanged = 0;
  const listed = new Set<string>();
  for (const fresh of input.fresh) {
    const key = findingKey(fresh);
    listed.add(key);
    const previous = stored.get(key);
    if (!previous) {
      missed.push(fresh);
      continue;
    }
    // Never older than the stored record: the store ignores out-of-order (older) writes.
    const refreshed = { ...fresh, updatedAt: later(fresh.updatedAt, previous.updatedAt) };
    if (previous.status !== FindingStatus.ACTIVE && fresh.status === FindingStatus.ACTIVE) reopened.push(refreshed);
    else if (previous.severity !== fresh.severity) changed.push(refreshed);
    else unchanged += 1;
  }
  const now = input.now.toISOString();
  const closed: NormalizedFinding[] = [];
  for (const [key, previous] of stored) {
    if (listed.has(key) || previous.status !== FindingStatus.ACTIVE || !input.digests.has(previous.digest)) continue;
    closed.push({ ...normalized(previous), status: FindingStatus.CLOSED, updatedAt: later(now, previous.updatedAt) });
  }
  return { missed, reopened, closed, changed, unchanged };
}

export interface PolicyCandidate {
  readonly finding: NormalizedFinding;
  readonly subject: PolicySubject;
}

export interface ExpiredExceptionFinding extends PolicyCandidate {
  readonly exception: PolicyException;
  readonly reason: string;
}

/**
 * Open findings that only an exception kept quiet, and whose exception has now expired: the policy acts on them
 * again, and their owners hear it (an EXCEPTION_EXPIRED alert; the dedup window stops repeats).
 */
export function expiredExceptionFindings(candidates: readonly PolicyCandidate[], policy: Policy, now: Date): ExpiredExceptionFinding[] {
  const out: ExpiredExceptionFinding[] = [];
  for (const candidate of candidates) {
    const decision = evaluateFinding(candidate.finding, candidate.subject, policy, now);
    if (decision.outcome === PolicyOutcome.ACT && decision.expiredException) {
      out.push({ ...candidate, exception: decision.expiredException, reason: decision.reason });
    }
  }
  return out;
}

export const ScanDecision = {
  /** Start a basic scan now. */
  SCAN: 'SCAN',
  /** Scanned within the configured age: nothing to do. */
  RECENT: 'RECENT',
  /** Scanned in the last 24 hours: ECR refuses a second scan of an image within a day (LimitExceededException). */
  DAILY_LIMIT: 'DAILY_LIMIT',
  /** A scan is running. */
  IN_PROGRESS: 'IN_PROGRESS',
} as const;
export type ScanDecision = (typeof ScanDecision)[keyof typeof ScanDecision];

export interface BasicScanSubject {
  readonly digest: string;
  /** When the last scan completed (ECR imageScanFindingsSummary.imageScanCompletedAt). */
  readonly lastScanAt?: string;
  /** ECR imageScanStatus.status (IN_PROGRESS, COMPLETE, FAILED, …). */
  readonly scanStatus?: string;
}

export class InvalidScanAgeError extends Error {
  public readonly code = 'INVALID_SCAN_AGE';
  public constructor(value: number) {
    super(`maxScanAgeDays must be a whole number of days from 1 to 365 (received ${value})`);
    this.name = 'InvalidScanAgeError';
  }
}

export const ECR_SCAN_INTERVAL_MS = 86_400_000;

/** Whether a basic (ECR) scan of an image is due: older than `maxScanAgeDays`, and allowed by ECR's daily limit. */
export function decideBasicScan(image: BasicScanSubject, options: { readonly maxScanAgeDays: number; readonly now: Date }): { decision: ScanDecision; reason: string } {
  const { maxScanAgeDays, now } = options;
  if (!(Number.isInteger(maxScanAgeDays) && maxScanAgeDays >= 1 && maxScanAgeDays <= 365)) throw new InvalidScanAgeError(maxScanAgeDays);
  if (image.scanStatus === 'IN_PROGRESS' || image.scanStatus === 'PENDING') {
    return { decision: ScanDecision.IN_PROGRESS, reason: `a scan of ${image.digest} is ${image.scanStatus.toLowerCase().replace('_', ' ')}` };
  }
  const last = image.lastScanAt !== undefined ? Date.parse(image.lastScanAt) : Number.NaN;
  if (Number.isNaN(last)) return { decision: ScanDecision.SCAN, reason: `${image.digest} was never scanned` };
  const age = now.getTime() - last;
  if (age < ECR_SCAN_INTERVAL_MS) return { decision: ScanDecision.DAILY_LIMIT, reason: `${image.digest} was scanned less than 24 hours ago (ECR allows one scan a day)` };
  if (age < maxScanAgeDays * ECR_SCAN_INTERVAL_MS) {
    return { decision: ScanDecision.RECENT, reason: `${image.digest} was scanned ${Math.floor(age / ECR_SCAN_INTERVAL_MS)} day(s) ago (max age ${maxScanAgeDays})` };
  }
  return { decision: ScanDecision.SCAN, reason: `${image.digest} was last scanned ${Math.floor(age / ECR_SCAN_INTERVAL_MS)} day(s) ago (max age ${maxScanAgeDays})` };
}
