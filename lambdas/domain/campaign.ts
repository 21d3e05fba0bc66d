import { createHash } from 'crypto';
import { ParentEdge, ParentRole, Tier } from './lineage';

export const CampaignTrigger = { PUSH: 'push', FINDING: 'finding', UPSTREAM: 'upstream' } as const;
export type CampaignTrigger = (typeof CampaignTrigger)[keyof typeof CampaignTrigger];

export const MemberState = {
  PENDING: 'pending',
  BUILDING: 'building',
  BUILT: 'built',
  FAILED: 'failed',
  SKIPPED: 'skipped',
  VERIFIED: 'verified',
} as const;
export type MemberState = (typeof MemberState)[keyof typeof MemberState];

/** States from which a member will still produce a new digest. */
const UNFINISHED: ReadonlySet<MemberState> = new Set([MemberState.PENDING, MemberState.BUILDING]);
const BROKEN: ReadonlySet<MemberState> = new Set([MemberState.FAILED, MemberState.SKIPPED]);

function shortHash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/** A campaign is identified by its root and the digest that started it: a replayed push finds the same campaign. */
export function campaignId(rootImage: string, rootDigest: string): string {
  return `c-${shortHash(rootImage, rootDigest).slice(0, 20)}`;
}

/**
 * Step Functions execution names are 1–80 characters of [A-Za-z0-9_-] and unique per state machine for 90 days:
 * deriving the name from (campaign, image) makes a duplicated or replayed event start nothing twice.
 */
export function rebuildExecutionName(campaign: string, image: string): string {
  const slug = image.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'image';
  return `${slug}-${shortHash(campaign, image).slice(0, 24)}`;
}

export interface ChildRecord {
  readonly image: string;
  readonly tier: Tier;
  readonly owner?: string;
  readonly parents: readonly ParentEdge[];
  readonly build?: { readonly project: string };
}

export interface RebuildRequest {
  readonly campaignId: string;
  readonly image: string;
  readonly owner?: string;
  readonly project: string;
  /** The runtime parent pinned by digest: the CodeBuild `BASE_IMAGE` override. */
  readonly baseImage: string;
  /** Every parent, pinned where its digest is known, runtime parent first. */
  readonly parentImages: readonly string[];
  readonly executionName: string;
  /** Longest estimated chain of build seconds from this image down (critical path): the slot priority. */
  readonly priority: number;
}

export interface RebuildDecision {
  readonly start: RebuildRequest[];
  readonly wait: Array<{ image: string; waitingFor: string[] }>;
  readonly skip: Array<{ image: string; reason: string }>;
}

export interface DecideRebuildsInput {
  readonly campaignId: string;
  readonly pushedImage: string;
  readonly pushedDigest: string;
  readonly children: readonly ChildRecord[];
  /** The child's state in this campaign, undefined when it is not a member. */
  readonly memberState: (image: string) => MemberState | undefined;
  /** The digest to pin a parent to (its campaign rebuild when built, else its current digest). */
  readonly parentDigest: (image: string) => string | undefined;
  readonly imageUri: (image: string, digest: string | undefined) => string;
  readonly priority: (image: string) => number;
}

/**
 * What a push of `pushedImage` does to each of its children within a campaign: rebuild it now (all its parents in
 * the campaign are built), leave it waiting for the last of its parents, or skip it (vendor image, no build project,
 * a parent failed). Pure: the handler supplies the states and digests.
 */
export function decideRebuilds(input: DecideRebuildsInput): RebuildDecision {
  const decision: RebuildDecision = { start: [], wait: [], skip: [] };
  for (const child of input.children) {
    if (child.tier === Tier.COTS) {
      decision.skip.push({ image: child.image, reason: 'vendor (COTS) image: its vendor is alerted, Patchline never rebuilds it' });
      continue;
    }
    if (!child.build) {
      decision.skip.push({ image: child.image, reason: 'no CodeBuild project registered for this image: alert only' });
      continue;
    }
    const state = input.memberState(child.image);
    if (state !== undefined && state !== MemberState.PENDING) continue; // already started or settled in this campaign
    const others = child.parents.filter((p) => p.image !== input.pushedImage);
    const broken = others.filter((p) => BROKEN.has(input.memberState(p.image) as MemberState));
    if (broken.length > 0) {
      decision.skip.push({ image: child.image, reason: `parent ${broken.map((p) => p.image).join(', ')} failed or was skipped in this campaign` });
      continue;
    }
    const waitingFor = others.filter((p) => UNFINISHED.has(input.memberState(p.image) as MemberState)).map((p) => p.image);
    if (waitingFor.length > 0) {
      decision.wait.push({ image: child.image, waitingFor });
      continue;
    }
    const ordered = [...child.parents].sort((a, b) => Number(b.role === ParentRole.RUNTIME) - Number(a.role === ParentRole.RUNTIME));
    const pinned = ordered.map((p) =>
      input.imageUri(p.image, p.image === input.pushedImage ? input.pushedDigest : input.parentDigest(p.image)),
    );
    decision.start.push({
      campaignId: input.campaignId,
      image: child.image,
      owner: child.owner,
      project: child.build.project,
      baseImage: pinned[0],
      parentImages: pinned,
      executionName: rebuildExecutionName(input.campaignId, child.image),
      priority: input.priority(child.image),
    });
  }
  // Highest priority first: while slots are free, the first to ask for one gets it.
  decision.start.sort((a, b) => b.priority - a.priority);
  return decision;
}
