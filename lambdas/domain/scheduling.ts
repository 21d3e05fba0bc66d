import { z } from 'zod';
import { ImageNotFoundError, LineageCycleError, LineageGraph } from './lineage';

/** How many recorded build durations an estimate looks at: recent builds reflect the image as it is now. */
export const ESTIMATE_HISTORY_WINDOW = 5;

/** Priorities are stored in whole milliseconds, so the sort key and the in-memory order agree exactly. */
const PRIORITY_DIGITS = 15;
const ENQUEUED_AT_DIGITS = 15;
const MAX_KEY_NUMBER = 10 ** PRIORITY_DIGITS - 1;
/** Largest priority a waiter may carry (about 3,000 years of builds): keeps the inverted key within its digits. */
export const MAX_PRIORITY_SECONDS = 1e11;
/** Largest `enqueuedAt` (epoch milliseconds, year ~33,000). */
export const MAX_ENQUEUED_AT = 10 ** ENQUEUED_AT_DIGITS - 1;
/** DynamoDB sort keys hold at most 1,024 bytes: the numbers and separators take 32, a store prefix a few more. */
export const MAX_WAITER_ID_BYTES = 512;
const WAITER_KEY_SEPARATOR = '#';

export class InvalidEstimateError extends Error {
  public readonly code = 'INVALID_ESTIMATE';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidEstimateError';
  }
}

export class InvalidWaiterError extends Error {
  public readonly code = 'INVALID_WAITER';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidWaiterError';
  }
}

export class InvalidWaiterSortKeyError extends Error {
  public readonly code = 'INVALID_WAITER_SORT_KEY';
  public constructor(public readonly sortKey: string, options?: { cause?: unknown }) {
    super(`waiter sort key ${JSON.stringify(sortKey.slice(0, 80))} is not <inverted priority>#<enqueued at>#<id>`, options);
    this.name = 'InvalidWaiterSortKeyError';
  }
}

export const WaiterSchema = z.object({
  /** Who waits: the execution (or image) that the slot is handed to. */
  id: z
    .string()
    .min(1)
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'a waiter id has no control characters')
    .refine((id) => Buffer.byteLength(id, 'utf8') <= MAX_WAITER_ID_BYTES, `a waiter id is at most ${MAX_WAITER_ID_BYTES} UTF-8 bytes`),
  /** Estimated seconds of builds on the longest chain from this image down (itself included). */
  priority: z.number().min(0).max(MAX_PRIORITY_SECONDS),
  /** When it started waiting, epoch milliseconds. */
  enqueuedAt: z.number().int().min(0).max(MAX_ENQUEUED_AT),
});
export type Waiter = z.infer<typeof WaiterSchema>;

/**
 * Estimated build seconds from recorded durations (oldest first): the mean of the last few valid ones. Non-finite and
 * negative records (a clock glitch, a build that never started) are ignored; with none left, the fallback is used.
 */
export function estimateBuildSeconds(history: readonly number[], fallbackSeconds: number): number {
  if (!Number.isFinite(fallbackSeconds) || fallbackSeconds < 0) {
    throw new InvalidEstimateError(`fallback estimate must be a finite number of seconds >= 0, got ${fallbackSeconds}`);
  }
  const recent: number[] = [];
  for (let i = history.length - 1; i >= 0 && recent.length < ESTIMATE_HISTORY_WINDOW; i--) {
    const seconds = history[i];
    if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0) recent.push(seconds);
  }
  if (recent.length === 0) return fallbackSeconds;
  return recent.reduce((sum, s) => sum + s, 0) / recent.length;
}

/**
 * For each campaign member: its own estimated build time plus the largest priority among its children in the campaign,
 * i.e. the estimated length of the longest chain of builds that still hangs on it. Leaves first (reverse Kahn order),
 * so it is O(V + E) and never recurses.
 */
export function criticalPathPriorities(
  graph: LineageGraph,
  members: ReadonlySet<string>,
  estimate: (image: string) => number,
): Map<string, number> {
  const parentsInCampaign = new Map<string, string[]>();
  const pendingChildren = new Map<string, number>();
  for (const image of members) {
    if (!graph.has(image)) throw new ImageNotFoundError(image);
    pendingChildren.set(image, pendingChildren.get(image) ?? 0);
  }
  for (const image of members) {
    // A parent may be listed twice (runtime and build role); it is one edge for scheduling.
    const parents = [...new Set(graph.parents(image).map((p) => p.image))].filter((p) => members.has(p));
    parentsInCampaign.set(image, parents);
    for (const parent of parents) pendingChildren.set(parent, pendingChildren.get(parent)! + 1);
  }
  const longestBelow = new Map<string, number>();
  const priorities = new Map<string, number>();
  const ready: string[] = [];
  for (const [image, pending] of pendingChildren) if (pending === 0) ready.push(image);
  while (ready.length > 0) {
    const image = ready.pop()!;
    const own = estimate(image);
    if (typeof own !== 'number' || !Number.isFinite(own) || own < 0) {
      throw new InvalidEstimateError(`estimate for ${JSON.stringify(image)} must be a finite number of seconds >= 0, got ${own}`);
    }
    const priority = own + (longestBelow.get(image) ?? 0);
    priorities.set(image, priority);
    for (const parent of parentsInCampaign.get(image)!) {
      if (priority > (longestBelow.get(parent) ?? 0)) longestBelow.set(parent, priority);
      const left = pendingChildren.get(parent)! - 1;
      pendingChildren.set(parent, left);
      if (left === 0) ready.push(parent);
    }
  }
  if (priorities.size < members.size) {
    // Only a cycle leaves members unprocessed; LineageGraph refuses those, but a hand-built graph may not.
    const stuck = [...members].filter((m) => !priorities.has(m));
    throw new LineageCycleError(stuck.slice(0, 20));
  }
  return priorities;
}

function quantizePriority(priority: number): number {
  return Math.round(priority * 1000);
}

function parseWaiter(waiter: unknown): Waiter {
  const parsed = WaiterSchema.safeParse(waiter);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidWaiterError(`waiter ${issue.path.join('.') || '(value)'}: ${issue.message}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * A sort key under which ascending order is slot order: highest priority first, then earliest enqueued, then id.
 * `<10^15-1 - priority in ms, 15 digits>#<enqueuedAt ms, 15 digits>#<id>`; a Query with ScanIndexForward=true and
 * Limit=1 returns the next waiter.
 */
export function encodeWaiterSortKey(priority: number, enqueuedAt: number, id: string): string {
  const waiter = parseWaiter({ id, priority, enqueuedAt });
  const inverted = MAX_KEY_NUMBER - quantizePriority(waiter.priority);
  return [
    String(inverted).padStart(PRIORITY_DIGITS, '0'),
    String(waiter.enqueuedAt).padStart(ENQUEUED_AT_DIGITS, '0'),
    waiter.id,
  ].join(WAITER_KEY_SEPARATOR);
}

const WAITER_SORT_KEY = new RegExp(`^(\\d{${PRIORITY_DIGITS}})${WAITER_KEY_SEPARATOR}(\\d{${ENQUEUED_AT_DIGITS}})${WAITER_KEY_SEPARATOR}([\\s\\S]+)$`);

/** The waiter a sort key encodes; the priority comes back rounded to the millisecond, as it was stored. */
export function decodeWaiterSortKey(sortKey: string): Waiter {
  const match = WAITER_SORT_KEY.exec(sortKey);
  if (!match) throw new InvalidWaiterSortKeyError(sortKey);
  const waiter = { id: match[3], priority: (MAX_KEY_NUMBER - Number(match[1])) / 1000, enqueuedAt: Number(match[2]) };
  try {
    return parseWaiter(waiter);
  } catch (error) {
    throw new InvalidWaiterSortKeyError(sortKey, { cause: error });
  }
}

/**
 * Orders strings the way DynamoDB orders string sort keys (by UTF-8 bytes, i.e. by code point); plain `<` compares
 * UTF-16 units and disagrees for characters beyond U+FFFF.
 */
export function compareWaiterSortKeys(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(j)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  const restA = a.length - i;
  const restB = b.length - j;
  return restA === restB ? 0 : restA < restB ? -1 : 1;
}

/** Slot order in memory, identical to the sort-key order: negative when `a` gets the slot before `b`. */
export function compareWaiters(a: Waiter, b: Waiter): number {
  const byPriority = quantizePriority(b.priority) - quantizePriority(a.priority);
  if (byPriority !== 0) return byPriority < 0 ? -1 : 1;
  if (a.enqueuedAt !== b.enqueuedAt) return a.enqueuedAt < b.enqueuedAt ? -1 : 1;
  return compareWaiterSortKeys(a.id, b.id);
}

/** The waiter that gets the next free slot, or undefined when nobody waits. */
export function pickNextWaiter(waiters: readonly Waiter[]): Waiter | undefined {
  let best: Waiter | undefined;
  for (const waiter of waiters) {
    parseWaiter(waiter);
    if (best === undefined || compareWaiters(waiter, best) < 0) best = waiter;
  }
  return best;
}

/**
 * How a state shows up in an execution's history. Each kind has a fixed event count (Step Functions history):
 * `task` Entered, Scheduled, Started, Succeeded|Failed, Exited; `task-sync` and `task-token` add Submitted;
 * `pass`/`choice`/`wait`/`succeed`/`fail` Entered, Exited (a Fail state: Entered only, then ExecutionFailed).
 */
export const ExecutionStateKind = {
  TASK: 'task',
  TASK_SYNC: 'task-sync',
  TASK_TOKEN: 'task-token',
  PASS: 'pass',
  CHOICE: 'choice',
  WAIT: 'wait',
  SUCCEED: 'succeed',
  FAIL: 'fail',
} as const;
export type ExecutionStateKind = (typeof ExecutionStateKind)[keyof typeof ExecutionStateKind];

const HISTORY_EVENTS_PER_STATE: Record<ExecutionStateKind, number> = {
  task: 5,
  'task-sync': 6,
  'task-token': 6,
  pass: 2,
  choice: 2,
  wait: 2,
  succeed: 2,
  fail: 1,
};
/** ExecutionStarted and ExecutionSucceeded/Failed. */
const HISTORY_EVENTS_PER_EXECUTION = 2;
/** A retried task adds a failed attempt: Scheduled, Started, Failed (the state is not re-entered). */
export const HISTORY_EVENTS_PER_RETRY = 3;

export interface ExecutionState {
  readonly name: string;
  readonly kind: ExecutionStateKind;
  /** Retries the state may make (its Retry policies' MaxAttempts summed); each adds history, not transitions. */
  readonly maxRetries?: number;
}

export const RebuildPath = {
  REBUILT: 'rebuilt',
  SETTLED_REBUILT: 'settledRebuilt',
  BUILD_FAILED: 'buildFailed',
  ALREADY_HANDLED: 'alreadyHandled',
  /** A spoke image: built in its own account through the spoke's hub-access role. */
  REBUILT_IN_SPOKE: 'rebuiltInSpoke',
  /** A spoke image outside the hub's region: started by start-remote-build, resumed by the build's forwarded end. */
  REBUILT_IN_REMOTE_SPOKE: 'rebuiltInRemoteSpoke',
} as const;
export type RebuildPath = (typeof RebuildPath)[keyof typeof RebuildPath];

/** CDK's LambdaInvoke `retryOnServiceExceptions`: six retries on Lambda service errors. */
const LAMBDA_SERVICE_RETRIES = 6;
/** StartBuild's retry budget on CodeBuild throttling. */
const START_BUILD_THROTTLING_RETRIES = 8;

/** Every execution starts by asking whether it waits out a settle window (only a pushed root's children do). */
const settleWindowOpen: ExecutionState = { name: 'SettleWindowOpen', kind: ExecutionStateKind.CHOICE };
const acquireSlot: ExecutionState = { name: 'AcquireSlot', kind: ExecutionStateKind.TASK_TOKEN, maxRetries: LAMBDA_SERVICE_RETRIES };
const markBuilding: ExecutionState = { name: 'MarkBuilding', kind: ExecutionStateKind.TASK };
/** Chooses the hub's StartBuild, the spoke's (the request carries the spoke role) or, outside the hub's region, StartRemoteBuild. */
const buildAccount: ExecutionState = { name: 'BuildAccount', kind: ExecutionStateKind.CHOICE };
const startBuild: ExecutionState = { name: 'StartBuild', kind: ExecutionStateKind.TASK_SYNC, maxRetries: START_BUILD_THROTTLING_RETRIES };
const releaseSlot = (name: string): ExecutionState => ({ name, kind: ExecutionStateKind.TASK, maxRetries: LAMBDA_SERVICE_RETRIES });

/** Slot taken, member marked, build placement chosen: every path that builds goes through these. */
const upToBuild: readonly ExecutionState[] = [acquireSlot, markBuilding, { name: 'MarkImageBuilding', kind: ExecutionStateKind.TASK }, buildAccount];
/** A build that succeeded: slot back, build recorded. */
const builtAndRecorded: readonly ExecutionState[] = [
  releaseSlot('ReleaseSlot'),
  { name: 'RecordBuilt', kind: ExecutionStateKind.TASK },
  { name: 'Rebuilt', kind: ExecutionStateKind.SUCCEED },
];

/**
 * The states one rebuild-image execution enters, per path; keep in step with the state machine (lib/patchline-stack.ts).
 * Waiting for a slot is not a path of its own: AcquireSlot is a `.waitForTaskToken` task on every path, parked until
 * the semaphore grants a slot (at once when one is free), so a wait adds neither states nor history events.
 */
export const REBUILD_EXECUTION_STATES: Readonly<Record<RebuildPath, readonly ExecutionState[]>> = {
  rebuilt: [settleWindowOpen, ...upToBuild, startBuild, ...builtAndRecorded],
  // A pushed root's child: waits out the settle window, re-pins the root's latest digest, then as `rebuilt`.
  settledRebuilt: [
    settleWindowOpen,
    { name: 'SettleWindow', kind: ExecutionStateKind.WAIT },
    { name: 'ResolveSettledBase', kind: ExecutionStateKind.TASK, maxRetries: LAMBDA_SERVICE_RETRIES },
    ...upToBuild,
    startBuild,
    ...builtAndRecorded,
  ],
  buildFailed: [
    settleWindowOpen,
    ...upToBuild,
    startBuild,
    releaseSlot('ReleaseSlotAfterFailure'),
    { name: 'RecordBuildFailure', kind: ExecutionStateKind.TASK, maxRetries: LAMBDA_SERVICE_RETRIES },
    { name: 'BuildFailed', kind: ExecutionStateKind.FAIL },
  ],
  alreadyHandled: [settleWindowOpen, acquireSlot, markBuilding, releaseSlot('ReleaseSlotNotPending'), { name: 'AlreadyHandled', kind: ExecutionStateKind.SUCCEED }],
  rebuiltInSpoke: [
    settleWindowOpen,
    ...upToBuild,
    { name: 'StartBuildInSpoke', kind: ExecutionStateKind.TASK_SYNC, maxRetries: START_BUILD_THROTTLING_RETRIES },
    ...builtAndRecorded,
  ],
  rebuiltInRemoteSpoke: [
    settleWindowOpen,
    ...upToBuild,
    // A Lambda `.waitForTaskToken`: CodeBuild's throttling retries plus the Lambda service retries.
    { name: 'StartRemoteBuild', kind: ExecutionStateKind.TASK_TOKEN, maxRetries: START_BUILD_THROTTLING_RETRIES + LAMBDA_SERVICE_RETRIES },
    ...builtAndRecorded,
  ],
};

/** Billed state transitions of one execution along `states`: one per state entered (retries are not transitions). */
export function executionTransitions(states: readonly ExecutionState[]): number {
  return states.length;
}

/** History events of one execution along `states`; with `worstCaseRetries`, as if every retry budget were spent. */
export function executionHistoryEvents(states: readonly ExecutionState[], options: { worstCaseRetries?: boolean } = {}): number {
  let events = HISTORY_EVENTS_PER_EXECUTION;
  for (const state of states) {
    events += HISTORY_EVENTS_PER_STATE[state.kind];
    if (options.worstCaseRetries) events += (state.maxRetries ?? 0) * HISTORY_EVENTS_PER_RETRY;
  }
  return events;
}
