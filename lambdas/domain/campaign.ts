import { createHash } from 'crypto';
import { ParentEdge, ParentRole, Tier } from './lineage';
import { BuildPlacement, BuildPlacementKind } from './registry-scope';

export const CampaignTrigger = { PUSH: 'push', FINDING: 'finding', UPSTREAM: 'upstream' } as const;
export type CampaignTrigger = (typeof CampaignTrigger)[keyof typeof CampaignTrigger];

export const CampaignStatus = { RUNNING: 'running', SUPERSEDED: 'superseded' } as const;
export type CampaignStatus = (typeof CampaignStatus)[keyof typeof CampaignStatus];

export const MemberState = {
  PENDING: 'pending',
  BUILDING: 'building',
  BUILT: 'built',
  FAILED: 'failed',
  SKIPPED: 'skipped',
  VERIFIED: 'verified',
  /** Rebuilt, rescanned, and a CVE that triggered the campaign is still there (its owner is alerted). */
  STILL_VULNERABLE: 'still-vulnerable',
  /** Never built here: a newer digest of the root started a campaign that rebuilds it instead. */
  SUPERSEDED: 'superseded',
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
  /**
   * Set on the root's own children while the campaign's settle window is open: the execution waits until `until`,
   * then re-pins `rootUri` to the root's latest digest before it asks for a slot.
   */
  readonly settle?: { readonly until: string; readonly rootImage: string; readonly rootUri: string };
  /** Account and region CodeBuild runs in; absent in a single-account deployment. */
  readonly buildAccount?: string;
  readonly buildRegion?: string;
  /** The spoke's PatchlineHubAccess-<region> role: present only for a spoke image (the workflow builds through it). */
  readonly buildRoleArn?: string;
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
  /** Where each child is built (hub, a spoke through its role, or unreachable); @default every child in the hub */
  readonly placement?: (image: string) => BuildPlacement;
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
    const placement = input.placement?.(child.image) ?? { kind: BuildPlacementKind.HUB };
    if (placement.kind === BuildPlacementKind.UNREACHABLE) {
      decision.skip.push({ image: child.image, reason: `cannot be rebuilt from the hub: ${placement.reason}` });
      continue;
    }
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
      ...buildFields(placement),
    });
  }
  // Highest priority first: while slots are free, the first to ask for one gets it.
  decision.start.sort((a, b) => b.priority - a.priority);
  return decision;
}

function buildFields(placement: BuildPlacement): Pick<RebuildRequest, 'buildAccount' | 'buildRegion' | 'buildRoleArn'> {
  if (placement.kind === BuildPlacementKind.SPOKE) return { buildAccount: placement.buildAccount, buildRegion: placement.buildRegion, buildRoleArn: placement.buildRoleArn };
  if (placement.kind === BuildPlacementKind.HUB && placement.buildAccount && placement.buildRegion) return { buildAccount: placement.buildAccount, buildRegion: placement.buildRegion };
  return {};
}

/** The campaign a root image's pushes currently feed, kept on the root image (`IMG#<root>`, sk `CAMPAIGN`). */
export interface RootCampaignPointer {
  readonly rootImage: string;
  readonly campaignId: string;
  /** The latest digest pushed into it (a coalesced push moves it). */
  readonly rootDigest: string;
  /** When that digest was pushed (the ECR event time). */
  readonly pushedAt: string;
  /** While the settle window is open (now < settlesAt) further pushes coalesce; absent with a zero window. */
  readonly settlesAt?: string;
}

export const RootPushKind = {
  /** The pointer's own digest again (a duplicated or replayed event): carry on in its campaign. */
  REPLAY: 'replay',
  /** Pushed before the pointer's digest (an event delivered late): a newer digest already has a campaign. */
  STALE: 'stale',
  /** Inside the open settle window: the campaign not yet started takes this digest instead. */
  COALESCE: 'coalesce',
  /** A new campaign; the pointer's campaign, if any, is superseded by it. */
  NEW: 'new',
} as const;
export type RootPushKind = (typeof RootPushKind)[keyof typeof RootPushKind];

/**
 * What a push of a campaign root (an image pushed outside any rebuild) does, given the root's current campaign. The
 * window is measured by arrival (`now`), not by the event's time: the waiting rebuilds re-read the root digest when
 * it closes, so a push that arrives later must start its own campaign, however early it was pushed.
 */
export function classifyRootPush(pointer: RootCampaignPointer | undefined, push: { digest: string; pushedAt: string }, now: Date): RootPushKind {
  if (!pointer) return RootPushKind.NEW;
  if (pointer.rootDigest === push.digest) return RootPushKind.REPLAY;
  if (Date.parse(push.pushedAt) < Date.parse(pointer.pushedAt)) return RootPushKind.STALE;
  if (pointer.settlesAt !== undefined && now.getTime() < Date.parse(pointer.settlesAt)) return RootPushKind.COALESCE;
  return RootPushKind.NEW;
}

/** When the settle window of a campaign opened at `now` closes; undefined for a zero window (start at once). */
export function settleDeadline(now: Date, windowSeconds: number): string | undefined {
  return windowSeconds > 0 ? new Date(now.getTime() + windowSeconds * 1000).toISOString() : undefined;
}

/**
 * Re-pins every reference to the root (`<rootUri>@<digest>`) to the root's latest digest: what a rebuild that waited
 * out the settle window builds from. Other parents keep their pins.
 */
export function repinRoot(references: readonly string[], rootUri: string, latestDigest: string): string[] {
  return references.map((ref) => (ref === rootUri || ref.startsWith(`${rootUri}@`) ? `${rootUri}@${latestDigest}` : ref));
}

export const VerificationVerdict = { VERIFIED: 'verified', STILL_VULNERABLE: 'still-vulnerable' } as const;
export type VerificationVerdict = (typeof VerificationVerdict)[keyof typeof VerificationVerdict];

/**
 * Whether a rescanned rebuild still carries the CVEs that triggered its campaign: any of them ACTIVE on the rebuilt
 * digest means still vulnerable. A campaign started by a push (no CVEs) is verified by the scan having completed.
 */
export function verifyRebuild<F extends { vulnerabilityId: string; status: string }>(
  triggering: readonly string[],
  findingsOfRebuiltDigest: readonly F[],
): { verdict: VerificationVerdict; remaining: F[] } {
  const wanted = new Set(triggering);
  const remaining = findingsOfRebuiltDigest.filter((f) => f.status === 'ACTIVE' && wanted.has(f.vulnerabilityId));
  return { verdict: remaining.length > 0 ? VerificationVerdict.STILL_VULNERABLE : VerificationVerdict.VERIFIED, remaining };
}
