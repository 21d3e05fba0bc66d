/**
 * Drift: an image built from a parent digest that is no longer the parent's newest. Upstream bases are patched on
 * their own cadence, and an image that was not rebuilt since carries the old packages: how far behind it is (in
 * parent versions and in days since the first newer one appeared) is what the owner needs to prioritise.
 */

/** One version of a parent: pushed to ECR (internal) or seen by the upstream watch (external). */
export interface ParentVersion {
  readonly digest: string;
  /** When it was pushed, or first seen upstream. */
  readonly pushedAt: string;
}

export interface DriftSubject {
  readonly image: string;
  readonly owner?: string;
  /** Parent image keys (every role: a build-stage image drifts too). */
  readonly parents: readonly string[];
  /** The image's newest version and the parent digests it was built from, when known. */
  readonly current?: {
    readonly digest: string;
    readonly pushedAt: string;
    readonly parentDigests?: Readonly<Record<string, string>>;
  };
}

export interface DriftedParent {
  readonly parent: string;
  /** The parent digest the image was built from. */
  readonly builtFrom: string;
  /** The parent's newest digest. */
  readonly latest: string;
  /** Parent versions newer than the one built from. */
  readonly versionsBehind: number;
  /** Whole days since the first newer parent version appeared. */
  readonly daysBehind: number;
  readonly behindSince: string;
  /** False when the digest built from is older than the recorded history: versionsBehind is then a lower bound. */
  readonly exact: boolean;
}

export interface DriftedImage {
  readonly image: string;
  readonly owner?: string;
  readonly digest: string;
  readonly parents: readonly DriftedParent[];
  /** The largest of its parents'. */
  readonly versionsBehind: number;
  readonly daysBehind: number;
}

export interface DriftReport {
  /** Most days behind first. */
  readonly drifted: readonly DriftedImage[];
  /** Images whose drift cannot be told, and why (no version, parent digest not recorded, parent never seen). */
  readonly unknown: ReadonlyArray<{ readonly image: string; readonly parent?: string; readonly reason: string }>;
}

export class InvalidVersionTimeError extends Error {
  public readonly code = 'INVALID_VERSION_TIME';
  public constructor(public readonly image: string, public readonly value: string, options?: { cause?: unknown }) {
    super(`version of ${image}: ${JSON.stringify(value.slice(0, 64))} is not an ISO 8601 date-time`, options);
    this.name = 'InvalidVersionTimeError';
  }
}

const DAY_MS = 86_400_000;

function timeOf(image: string, value: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidVersionTimeError(image, value);
  return ms;
}

/** Lists drifted images; `history` gives each parent's versions (any order). Pure: the caller reads the store. */
export function findDrift(subjects: readonly DriftSubject[], history: (parent: string) => readonly ParentVersion[] | undefined, now: Date): DriftReport {
  const drifted: DriftedImage[] = [];
  const unknown: Array<{ image: string; parent?: string; reason: string }> = [];
  const sortedHistory = new Map<string, Array<ParentVersion & { at: number }>>();
  const versionsOf = (parent: string): Array<ParentVersion & { at: number }> => {
    let sorted = sortedHistory.get(parent);
    if (!sorted) {
      sorted = (history(parent) ?? []).map((v) => ({ ...v, at: timeOf(parent, v.pushedAt) })).sort((a, b) => a.at - b.at);
      sortedHistory.set(parent, sorted);
    }
    return sorted;
  };
  for (const subject of subjects) {
    if (subject.parents.length === 0) continue;
    const current = subject.current;
    if (!current) {
      unknown.push({ image: subject.image, reason: 'no version of the image is recorded' });
      continue;
    }
    const builtAt = timeOf(subject.image, current.pushedAt);
    const behind: DriftedParent[] = [];
    for (const parent of subject.parents) {
      const builtFrom = current.parentDigests?.[parent];
      if (builtFrom === undefined) {
        unknown.push({ image: subject.image, parent, reason: `the ${parent} digest it was built from is not recorded` });
        continue;
      }
      const versions = versionsOf(parent);
      if (versions.length === 0) {
        unknown.push({ image: subject.image, parent, reason: `no version of ${parent} is recorded` });
        continue;
      }
      const latest = versions[versions.length - 1];
      if (latest.digest === builtFrom) continue;
      const index = versions.findIndex((v) => v.digest === builtFrom);
      // The digest built from predates the recorded history: count what appeared after the image itself was built.
      let newer = index >= 0 ? versions.slice(index + 1) : versions.filter((v) => v.at > builtAt);
      if (newer.length === 0) newer = [latest];
      behind.push({
        parent,
        builtFrom,
        latest: latest.digest,
        versionsBehind: newer.length,
        daysBehind: Math.max(0, Math.floor((now.getTime() - newer[0].at) / DAY_MS)),
        behindSince: new Date(newer[0].at).toISOString(),
        exact: index >= 0,
      });
    }
    if (behind.length > 0) {
      drifted.push({
        image: subject.image,
        ...(subject.owner !== undefined && { owner: subject.owner }),
        digest: current.digest,
        parents: behind,
        versionsBehind: Math.max(...behind.map((b) => b.versionsBehind)),
        daysBehind: Math.max(...behind.map((b) => b.daysBehind)),
      });
    }
  }
  drifted.sort((a, b) => b.daysBehind - a.daysBehind || b.versionsBehind - a.versionsBehind || a.image.localeCompare(b.image));
  return { drifted, unknown };
}
