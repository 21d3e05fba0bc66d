import { MemberState } from './campaign';
import { compareSeverity, FindingStatus, NormalizedFinding, Severity } from './finding';
import { ImageNode, isInternalImageKey, Tier } from './lineage';
import { matchesImagePattern, PolicyException } from './policy';
import type { DriftedImage } from './drift';

/**
 * The posture report model: per owner and for the organization, what is open (by severity, the oldest unpatched),
 * what drifted, what is waived and until when, how rebuild campaigns ended and how long remediation takes.
 */

export type SeverityCounts = Record<Severity, number> & { total: number };

export type PostureFinding = Pick<
  NormalizedFinding,
  'repository' | 'digest' | 'vulnerabilityId' | 'severity' | 'status' | 'firstObservedAt' | 'updatedAt' | 'fixAvailable'
> & {
  readonly history?: ReadonlyArray<{ readonly status: string; readonly at: string }>;
  /** The image key the finding is stored under (a spoke's is registry-qualified); @default - its repository */
  readonly image?: string;
};

export interface PostureCampaign {
  readonly campaignId: string;
  readonly rootImage: string;
  readonly trigger: string;
  readonly startedAt: string;
  readonly members: ReadonlyArray<{ readonly image: string; readonly state: MemberState; readonly updatedAt: string }>;
}

export interface PostureInput {
  readonly now: Date;
  readonly images: readonly ImageNode[];
  /** Each internal image's current digest: only its findings are open on the image (older digests are replaced). */
  readonly currentDigests: ReadonlyMap<string, string>;
  readonly findings: readonly PostureFinding[];
  readonly exceptions: readonly PolicyException[];
  readonly drift: readonly DriftedImage[];
  readonly campaigns: readonly PostureCampaign[];
}

export const CampaignOutcome = { RUNNING: 'running', FAILED: 'failed', COMPLETED: 'completed' } as const;
export type CampaignOutcome = (typeof CampaignOutcome)[keyof typeof CampaignOutcome];

export interface OldestUnpatched {
  readonly image: string;
  readonly vulnerabilityId: string;
  readonly severity: Severity;
  readonly firstObservedAt: string;
  readonly ageDays: number;
}

export interface ExceptionView {
  readonly image: string;
  readonly vulnerabilityId: string;
  readonly approver: string;
  readonly reason: string;
  readonly expiresAt: string;
  /** Negative once expired. */
  readonly daysLeft: number;
}

export interface PostureSummary {
  /** An owner id, or `*` for the organization. */
  readonly owner: string;
  readonly images: number;
  readonly openFindings: SeverityCounts;
  readonly oldestUnpatched: OldestUnpatched | null;
  readonly drifted: readonly DriftedImage[];
  readonly activeExceptions: readonly ExceptionView[];
  readonly expiredExceptions: readonly ExceptionView[];
  readonly campaigns: Record<CampaignOutcome, number> & { total: number };
  /** Mean days from first observed to closed, over the findings closed; null when none was. */
  readonly meanTimeToRemediateDays: number | null;
  readonly remediated: number;
}

export interface ImagePosture {
  readonly image: string;
  readonly tier: Tier;
  readonly owner?: string;
  readonly parents: readonly string[];
  readonly digest?: string;
  readonly openFindings: SeverityCounts;
  readonly highestSeverity: Severity | null;
  readonly versionsBehind: number;
  readonly daysBehind: number;
}

export interface PostureReport {
  readonly generatedAt: string;
  readonly organization: PostureSummary;
  /** Alphabetical by owner. */
  readonly owners: readonly PostureSummary[];
  /** The lineage with each image's state, for drawing it. */
  readonly images: readonly ImagePosture[];
  /** Open findings on repositories outside the lineage: nobody is told about them. */
  readonly untracked: { readonly repositories: readonly string[]; readonly openFindings: number };
}

export const ORGANIZATION = '*';
const DAY_MS = 86_400_000;
const SEVERITY_ORDER: readonly Severity[] = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFORMATIONAL, Severity.UNTRIAGED];

function emptyCounts(): SeverityCounts {
  return { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, INFORMATIONAL: 0, UNTRIAGED: 0, total: 0 };
}

export function campaignOutcome(campaign: PostureCampaign): CampaignOutcome {
  const states = new Set(campaign.members.map((m) => m.state));
  if (states.has(MemberState.PENDING) || states.has(MemberState.BUILDING)) return CampaignOutcome.RUNNING;
  if (states.has(MemberState.FAILED)) return CampaignOutcome.FAILED;
  return CampaignOutcome.COMPLETED;
}

/** When a finding was closed: its last CLOSED history entry, else its update time. */
function closedAt(finding: PostureFinding): string {
  const entry = [...(finding.history ?? [])].reverse().find((h) => h.status === FindingStatus.CLOSED);
  return entry?.at ?? finding.updatedAt;
}

export function buildPostureReport(input: PostureInput): PostureReport {
  const nowMs = input.now.getTime();
  const byImage = new Map(input.images.map((i) => [i.image, i]));
  const driftByImage = new Map(input.drift.map((d) => [d.image, d]));
  const openByImage = new Map<string, PostureFinding[]>();
  const closedByImage = new Map<string, PostureFinding[]>();
  const untracked = new Set<string>();
  let untrackedOpen = 0;
  for (const finding of input.findings) {
    const node = byImage.get(finding.image ?? finding.repository);
    if (!node || !isInternalImageKey(node.image)) {
      if (finding.status === FindingStatus.ACTIVE) {
        untracked.add(finding.image ?? finding.repository);
        untrackedOpen += 1;
      }
      continue;
    }
    const current = input.currentDigests.get(node.image);
    if (finding.status === FindingStatus.CLOSED) {
      closedByImage.set(node.image, [...(closedByImage.get(node.image) ?? []), finding]);
    } else if (finding.status === FindingStatus.ACTIVE && (current === undefined || finding.digest === current)) {
      openByImage.set(node.image, [...(openByImage.get(node.image) ?? []), finding]);
    }
  }

  const exceptionView = (e: PolicyException): ExceptionView => ({
    image: e.image,
    vulnerabilityId: e.vulnerabilityId,
    approver: e.approver,
    reason: e.reason,
    expiresAt: e.expiresAt,
    daysLeft: Math.floor((Date.parse(e.expiresAt) - nowMs) / DAY_MS),
  });

  const summarize = (owner: string, images: readonly ImageNode[]): PostureSummary => {
    const keys = new Set(images.map((i) => i.image));
    const counts = emptyCounts();
    let oldest: OldestUnpatched | null = null;
    let remediated = 0;
    let remediationMs = 0;
    for (const image of keys) {
      for (const f of openByImage.get(image) ?? []) {
        counts[f.severity] += 1;
        counts.total += 1;
        if (oldest === null || Date.parse(f.firstObservedAt) < Date.parse(oldest.firstObservedAt)) {
          oldest = {
            image,
            vulnerabilityId: f.vulnerabilityId,
            severity: f.severity,
            firstObservedAt: f.firstObservedAt,
            ageDays: Math.floor((nowMs - Date.parse(f.firstObservedAt)) / DAY_MS),
          };
        }
      }
      for (const f of closedByImage.get(image) ?? []) {
        const ms = Date.parse(closedAt(f)) - Date.parse(f.firstObservedAt);
        if (Number.isNaN(ms) || ms < 0) continue;
        remediated += 1;
        remediationMs += ms;
      }
    }
    const exceptions = input.exceptions.filter((e) => owner === ORGANIZATION || [...keys].some((image) => matchesImagePattern(e.image, image)));
    const views = exceptions.map(exceptionView).sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
    const campaigns = { running: 0, failed: 0, completed: 0, total: 0 };
    for (const c of input.campaigns) {
      if (owner !== ORGANIZATION && !keys.has(c.rootImage) && !c.members.some((m) => keys.has(m.image))) continue;
      campaigns[campaignOutcome(c)] += 1;
      campaigns.total += 1;
    }
    return {
      owner,
      images: keys.size,
      openFindings: counts,
      oldestUnpatched: oldest,
      drifted: input.drift.filter((d) => keys.has(d.image)),
      activeExceptions: views.filter((v) => Date.parse(v.expiresAt) > nowMs),
      expiredExceptions: views.filter((v) => Date.parse(v.expiresAt) <= nowMs),
      campaigns,
      meanTimeToRemediateDays: remediated > 0 ? Math.round((remediationMs / remediated / DAY_MS) * 10) / 10 : null,
      remediated,
    };
  };

  const internal = input.images.filter((i) => isInternalImageKey(i.image));
  const owners = [...new Set(internal.map((i) => i.owner).filter((o): o is string => o !== undefined))].sort();
  const images: ImagePosture[] = input.images.map((node) => {
    const counts = emptyCounts();
    for (const f of openByImage.get(node.image) ?? []) {
      counts[f.severity] += 1;
      counts.total += 1;
    }
    const highest = SEVERITY_ORDER.find((s) => counts[s] > 0) ?? null;
    const drift = driftByImage.get(node.image);
    return {
      image: node.image,
      tier: node.tier,
      ...(node.owner !== undefined && { owner: node.owner }),
      parents: node.parents.map((p) => p.image),
      ...(input.currentDigests.has(node.image) && { digest: input.currentDigests.get(node.image) }),
      openFindings: counts,
      highestSeverity: highest,
      versionsBehind: drift?.versionsBehind ?? 0,
      daysBehind: drift?.daysBehind ?? 0,
    };
  });
  return {
    generatedAt: input.now.toISOString(),
    organization: summarize(ORGANIZATION, internal),
    owners: owners.map((owner) => summarize(owner, internal.filter((i) => i.owner === owner))),
    images,
    untracked: { repositories: [...untracked].sort(), openFindings: untrackedOpen },
  };
}

/** The most severe of two (null-safe), for colouring. */
export function worseSeverity(a: Severity | null, b: Severity | null): Severity | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareSeverity(a, b) >= 0 ? a : b;
}
