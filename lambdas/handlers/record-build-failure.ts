import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { MemberState } from '../domain/campaign';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { PatchlineMetric } from '../domain/patchline-metric';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { MemberRecord } from '../store/campaign-store';
import { handOverToCurrentCampaign, RebuildStart } from './campaign-handover';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics } from './dependencies';

const logger = new Logger({ serviceName: 'patchline-record-build-failure' });

const CAMPAIGN_ID = z.string().regex(/^c-[a-f0-9]{20}$/);
const IMAGE = z.string().min(1).max(1000);

/** The state machine's own failure path: the campaign, the image and the build's error. */
export const RecordBuildFailureInputSchema = z.object({
  campaignId: CAMPAIGN_ID,
  image: IMAGE,
  error: z.object({ Error: z.string().max(1000).optional(), Cause: z.string().optional() }).optional(),
});

/**
 * A rebuild-image execution that ended without reaching its own failure path (RebuildEndedRule): aborted, timed out,
 * or failed outside the Catch. Its input names the campaign and the image.
 */
export const RebuildEndedEventSchema = z.object({
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,80}$/, 'not a Step Functions execution name'),
    status: z.enum(['FAILED', 'ABORTED', 'TIMED_OUT']),
    input: z
      .string()
      .nullish()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text ?? '') as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'the execution input is not included or not JSON (inputDetails.included false?)' });
          return z.NEVER;
        }
      })
      .pipe(z.object({ campaignId: CAMPAIGN_ID, image: IMAGE })),
  }),
});

export interface RecordBuildFailureResult {
  readonly skipped: string[];
  /** A superseded campaign's build failed: the image's rebuild in the root's current campaign, started now. */
  readonly handedOver: RebuildStart[];
  /** The campaign it was handed over to, when the failed campaign was superseded. */
  readonly handedOverTo?: string;
}

/** The shared dependencies plus the hub's registry scope (as image-pushed's: a spoke image's rebuild runs in the spoke). */
export type RecordBuildFailureDependencies = HandlerDependencies & { readonly registryScope?: RegistryScope };

export class MissingRebuildStarterError extends Error {
  public readonly code = 'MISSING_REBUILD_STARTER';
  public constructor(image: string) {
    super(`${image} must be rebuilt in the campaign that superseded its failed one, but record-build-failure has no rebuild starter (REBUILD_STATE_MACHINE_ARN)`);
    this.name = 'MissingRebuildStarterError';
  }
}

/**
 * A rebuild failed — its build failed (the state machine's Catch), or its execution was aborted, timed out or failed
 * outside that path (the "Step Functions Execution Status Change" event through RebuildEndedRule): the image is marked failed and every image below it that is still pending in the campaign is
 * skipped, with the reason; siblings go on. When the campaign was superseded while this build ran, the root's current
 * campaign had deferred its own rebuild of the image until this build ended: it is handed over now, as a successful
 * build's push would have (campaign-handover), so the image is not left pending there.
 */
export function makeRecordBuildFailureHandler(deps: RecordBuildFailureDependencies): (event: unknown) => Promise<RecordBuildFailureResult> {
  const scope = deps.registryScope ?? RegistryScope.singleAccount();
  return async (event) => {
    const failure = parseFailure(event);
    const { campaignId, image, reason } = failure;
    const failed = await deps.campaigns.transition(campaignId, image, [MemberState.BUILDING, MemberState.PENDING], MemberState.FAILED, { reason });
    if (!failed && failure.fromEndedExecution) {
      // The execution's own failure path recorded it already (a FAILED status after BuildFailed), or the member had
      // moved on (built, superseded): nothing of this execution is left to fail.
      logger.info('rebuild ended; its member needs no failure record', { campaignId, image, reason });
      return { skipped: [], handedOver: [] };
    }
    await deps.campaigns.clearBuilding(image, campaignId);
    const skipped: string[] = [];
    for (const below of await deps.lineage.descendants(image)) {
      const moved = await deps.campaigns.transition(campaignId, below.image, [MemberState.PENDING], MemberState.SKIPPED, {
        reason: `not rebuilt: ${image} failed to build (${reason.slice(0, 200)})`,
      });
      if (moved) skipped.push(below.image);
    }
    if (failed) {
      // Counted once per failure: a retried invocation finds the member failed already.
      deps.metrics?.count(PatchlineMetric.REBUILDS_FAILED, 1);
      if (firstFailure(await deps.campaigns.members(campaignId), image)) deps.metrics?.count(PatchlineMetric.CAMPAIGNS_FAILED, 1);
    }
    const handover = await handOver(deps, campaignId, image, scope);
    logger.warn('rebuild failed', { campaignId, image, reason, skipped: skipped.length, handedOverTo: handover.handedOverTo, handedOver: handover.handedOver.length });
    return { skipped, ...handover };
  };
}

interface Failure {
  readonly campaignId: string;
  readonly image: string;
  readonly reason: string;
  /** From RebuildEndedRule rather than the state machine's own Catch. */
  readonly fromEndedExecution: boolean;
}

function parseFailure(event: unknown): Failure {
  const ended = RebuildEndedEventSchema.safeParse(event);
  if (ended.success) {
    const { name, status, input } = ended.data.detail;
    return { ...input, reason: `rebuild execution ${name} ended ${status}`, fromEndedExecution: true };
  }
  const parsed = RecordBuildFailureInputSchema.safeParse(event);
  if (!parsed.success) {
    // An ended-execution event is reported by its own schema's issues: they say which of its fields is wrong.
    const looksEnded = typeof event === 'object' && event !== null && 'detail-type' in event;
    const error = looksEnded ? ended.error : parsed.error;
    throw new InvalidEventError('record-build-failure', describeIssues(error, event), { cause: error });
  }
  const { campaignId, image, error } = parsed.data;
  return { campaignId, image, reason: `${error?.Error ?? 'build failed'}${error?.Cause ? `: ${error.Cause.slice(0, 500)}` : ''}`, fromEndedExecution: false };
}

async function handOver(deps: HandlerDependencies, campaignId: string, image: string, scope: RegistryScope): Promise<Pick<RecordBuildFailureResult, 'handedOver' | 'handedOverTo'>> {
  const starter = deps.rebuilds;
  // Pins are made only for a rebuild that is due: without a starter that rebuild could not start, which is refused.
  const pin = (i: string, digest: string | undefined): string => {
    if (!starter) throw new MissingRebuildStarterError(image);
    // Each parent is pinned in its own registry, the hub's the starter's (as image-pushed pins them).
    return scope.pinnedReference(i, digest, { account: starter.account, region: starter.region });
  };
  const { campaignId: to, starts } = await handOverToCurrentCampaign(deps, campaignId, image, pin, scope);
  for (const start of starts) await starter!.start(start.name, start.input);
  return { handedOver: starts, ...(to && { handedOverTo: to }) };
}

/**
 * Whether `image`'s failure is its campaign's first: the earliest failed member (by the time it failed, then by name).
 * Two failures recorded at once each see both, and only the earlier counts.
 */
function firstFailure(members: readonly MemberRecord[], image: string): boolean {
  const failedAt = (m: MemberRecord): string => [...(m.history ?? [])].reverse().find((h) => h.state === MemberState.FAILED)?.at ?? m.updatedAt;
  const failed = members.filter((m) => m.state === MemberState.FAILED).sort((a, b) => failedAt(a).localeCompare(failedAt(b)) || a.image.localeCompare(b.image));
  return failed[0]?.image === image;
}

let environmentDependencies: RecordBuildFailureDependencies | undefined;

export const handler = (event: unknown): Promise<RecordBuildFailureResult> => {
  environmentDependencies ??= { ...dependenciesFromEnvironment(), registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]) };
  return publishingMetrics(environmentDependencies, makeRecordBuildFailureHandler(environmentDependencies))(event);
};
