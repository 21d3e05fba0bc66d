import { NormalizedFinding } from './finding';
import { LineageGraph, ParentRole, Tier } from './lineage';

/**
 * Origin attribution: where in the lineage a vulnerable package came from, and so where the fix has to land.
 *
 * Only runtime parents are followed: a build parent (builder stage, `COPY --from`) does not ship its packages.
 * An ancestor carries the vulnerability when its own findings list the same vulnerability id with one of the same
 * package versions (`observed`). An ancestor with no recorded findings at all (an external base Patchline cannot
 * scan, an image never scanned) cannot disprove it, and is assumed to carry it (`inferred`): packages are almost
 * always inherited, and assuming so moves the fix up, where it covers the reported image too. An ancestor that
 * was scanned and does not list it disproves it, and the climb stops below it.
 */

export const OriginAction = {
  /** Internal origin with a build project: a rebuild campaign starts at the origin. */
  REBUILD: 'REBUILD',
  /** Internal origin without a build project: its owner is alerted, nothing can be rebuilt automatically. */
  ALERT_OWNER: 'ALERT_OWNER',
  /** External origin: alert the owner of the first internal image below it and watch the upstream for an update. */
  ALERT_OWNER_UPSTREAM: 'ALERT_OWNER_UPSTREAM',
  /** The reported image or an image on the path to the origin is COTS: the vendor fixes it, never a rebuild. */
  ALERT_VENDOR: 'ALERT_VENDOR',
} as const;
export type OriginAction = (typeof OriginAction)[keyof typeof OriginAction];

export const Evidence = {
  /** The image the finding was reported on. */
  REPORTED: 'reported',
  /** The image's own findings list the same vulnerability and package version. */
  OBSERVED: 'observed',
  /** The image has no recorded findings, so carrying the vulnerability is assumed, not seen. */
  INFERRED: 'inferred',
} as const;
export type Evidence = (typeof Evidence)[keyof typeof Evidence];

export interface OriginPathStep {
  readonly image: string;
  readonly tier: Tier;
  readonly internal: boolean;
  readonly evidence: Evidence;
}

export interface OriginAttribution {
  readonly image: string;
  readonly vulnerabilityId: string;
  readonly origin: string;
  readonly originTier: Tier;
  readonly originInternal: boolean;
  /** `observed` when every image from the reported one up to the origin was seen to carry it; else `inferred`. */
  readonly evidence: typeof Evidence.OBSERVED | typeof Evidence.INFERRED;
  /** Where the fix lands: the internal origin, the first internal image below an external one, or the COTS image. */
  readonly actionImage: string;
  readonly action: OriginAction;
  /** From the origin down to the reported image, along runtime parents. */
  readonly path: readonly OriginPathStep[];
  /** Other images at the same height that also carry it through another runtime parent (multi-parent images). */
  readonly otherOrigins: readonly string[];
  readonly reason: string;
}

export interface AttributedVulnerability {
  readonly vulnerabilityId: string;
  readonly packages: readonly { readonly name: string; readonly installedVersion: string }[];
}

export type FindingsLookup = (image: string) => readonly NormalizedFinding[] | undefined;

function isInternal(tier: Tier): boolean {
  return tier !== Tier.EXTERNAL;
}

/** `observed`, `inferred`, or undefined when the image's findings disprove it. */
function carries(image: string, vulnerability: AttributedVulnerability, findingsByImage: FindingsLookup): Evidence | undefined {
  const findings = findingsByImage(image);
  if (findings === undefined) return Evidence.INFERRED;
  const wanted = new Set(vulnerability.packages.map((p) => `${p.name}\u0000${p.installedVersion}`));
  const match = findings.some(
    (f) =>
      f.vulnerabilityId === vulnerability.vulnerabilityId &&
      f.status !== 'CLOSED' &&
      (wanted.size === 0 || f.packages.some((p) => wanted.has(`${p.name}\u0000${p.installedVersion}`))),
  );
  return match ? Evidence.OBSERVED : undefined;
}

interface Climb {
  /** Images from this one up to its origin, this one included. */
  readonly height: number;
  readonly evidence: Evidence;
  /** The runtime parent the origin is reached through; undefined when this image is the origin. */
  readonly next?: string;
  readonly origin: string;
  readonly inferred: boolean;
  readonly others: readonly string[];
}

/** Higher first; at equal height observed before inferred; then the earlier runtime parent (already in order). */
function better(a: Climb, b: Climb): boolean {
  if (a.height !== b.height) return a.height > b.height;
  return !a.inferred && b.inferred;
}

export function attributeOrigin(
  graph: LineageGraph,
  image: string,
  vulnerability: AttributedVulnerability,
  findingsByImage: FindingsLookup,
): OriginAttribution {
  graph.require(image);
  const memo = new Map<string, Climb>();
  const evidenceOf = new Map<string, Evidence | undefined>();
  const evidence = (candidate: string): Evidence | undefined => {
    if (!evidenceOf.has(candidate)) evidenceOf.set(candidate, carries(candidate, vulnerability, findingsByImage));
    return evidenceOf.get(candidate);
  };
  const carryingParents = (node: string): string[] =>
    graph
      .parents(node)
      .filter((p) => p.role === ParentRole.RUNTIME && evidence(p.image) !== undefined)
      .map((p) => p.image);

  // Iterative post-order over runtime parents: deep lineages must not overflow the stack; each image is visited once
  // and keeps only a pointer to the next image up, so a long chain stays linear.
  const stack: Array<{ node: string; own: Evidence; expanded: boolean }> = [{ node: image, own: Evidence.REPORTED, expanded: false }];
  const inProgress = new Set<string>(); // a guard only: LineageGraph refuses cycles
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (memo.has(top.node)) {
      stack.pop();
      continue;
    }
    const parents = carryingParents(top.node).filter((p) => !inProgress.has(p) || memo.has(p));
    if (!top.expanded) {
      top.expanded = true;
      inProgress.add(top.node);
      for (const parent of parents) if (!memo.has(parent)) stack.push({ node: parent, own: evidence(parent)!, expanded: false });
      continue;
    }
    stack.pop();
    inProgress.delete(top.node);
    let best: string | undefined;
    for (const parent of parents) {
      const candidate = memo.get(parent);
      if (candidate && (best === undefined || better(candidate, memo.get(best)!))) best = parent;
    }
    const chosen = best !== undefined ? memo.get(best)! : undefined;
    const others = new Set(chosen?.others ?? []);
    for (const parent of parents) {
      const candidate = memo.get(parent);
      if (chosen && candidate && parent !== best && candidate.height === chosen.height && candidate.origin !== chosen.origin) others.add(candidate.origin);
    }
    memo.set(top.node, {
      height: (chosen?.height ?? 0) + 1,
      evidence: top.own,
      next: best,
      origin: chosen?.origin ?? top.node,
      inferred: top.own === Evidence.INFERRED || (chosen?.inferred ?? false),
      others: [...others].sort(),
    });
  }

  const result = memo.get(image)!;
  const path: OriginPathStep[] = [];
  for (let at: string | undefined = image; at !== undefined; at = memo.get(at)!.next) {
    const tier = graph.require(at).tier;
    path.push({ image: at, tier, internal: isInternal(tier), evidence: memo.get(at)!.evidence });
  }
  path.reverse();
  const origin = path[0];
  const base = {
    image,
    vulnerabilityId: vulnerability.vulnerabilityId,
    origin: origin.image,
    originTier: origin.tier,
    originInternal: origin.internal,
    evidence: result.inferred ? Evidence.INFERRED : Evidence.OBSERVED,
    path,
    otherOrigins: result.others,
  } as const;
  const how = result.inferred ? 'inferred (an image on the path has no recorded findings)' : 'observed';
  const chain = path.map((s) => s.image).join(' → ');

  // The COTS image closest to the origin is the one the vendor has to update.
  const cots = path.find((s) => s.tier === Tier.COTS);
  if (cots) {
    return {
      ...base,
      actionImage: cots.image,
      action: OriginAction.ALERT_VENDOR,
      reason: `${vulnerability.vulnerabilityId} reaches ${image} through the COTS image ${cots.image} (${chain}, ${how}): the vendor has to ship the fix`,
    };
  }
  if (origin.internal) {
    const node = graph.require(origin.image);
    const rebuild = node.build !== undefined;
    return {
      ...base,
      actionImage: origin.image,
      action: rebuild ? OriginAction.REBUILD : OriginAction.ALERT_OWNER,
      reason: `${vulnerability.vulnerabilityId} originates in ${origin.image} (${chain}, ${how}): ${
        rebuild ? `rebuild ${origin.image} and everything below it` : `${origin.image} has no build project, alert its owner`
      }`,
    };
  }
  // External origin: the fix lands in the first internal image below it (its rebuild picks up the upstream update).
  const firstInternal = path.find((s) => s.internal) ?? path[path.length - 1];
  return {
    ...base,
    actionImage: firstInternal.image,
    action: OriginAction.ALERT_OWNER_UPSTREAM,
    reason: `${vulnerability.vulnerabilityId} originates in the external image ${origin.image} (${chain}, ${how}): alert the owner of ${firstInternal.image} and watch ${origin.image} for an update`,
  };
}
