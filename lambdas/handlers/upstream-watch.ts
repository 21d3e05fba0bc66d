import { Logger } from '@aws-lambda-powertools/logger';
import { OciRegistryError } from '../aws/oci-registry';
import { campaignId as deriveCampaignId, CampaignTrigger, decideRebuilds, MemberState, RebuildRequest } from '../domain/campaign';
import { parseImageRef } from '../domain/image-ref';
import { LineageGraph, Tier } from '../domain/lineage';
import { PatchlineMetric } from '../domain/patchline-metric';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { criticalPathPriorities } from '../domain/scheduling';
import { dependenciesFromEnvironment, HandlerDependencies, publishingMetrics } from './dependencies';
import { RescanServices, rescanServicesFromEnvironment } from './rescan-services';

const logger = new Logger({ serviceName: 'patchline-upstream-watch' });

export interface UpstreamMove {
  readonly image: string;
  readonly from: string;
  readonly to: string;
  readonly campaignId: string;
  /** The first internal images below it, started now; the rest follow through their own push events. */
  readonly rebuilding: string[];
  readonly skipped: Array<{ image: string; reason: string }>;
}

/** The shared dependencies plus the hub's registry scope: which keys are internal, and where a spoke image is rebuilt. */
export type UpstreamWatchDependencies = HandlerDependencies & { readonly registryScope?: RegistryScope };

export interface UpstreamWatchResult {
  readonly checked: number;
  readonly unchanged: number;
  /** First sighting: the digest is recorded as the baseline, nothing is rebuilt. */
  readonly baselined: string[];
  readonly moved: UpstreamMove[];
  readonly errors: Array<{ image: string; code: string; message: string }>;
  readonly starts: Array<{ name: string; input: RebuildRequest }>;
}

/**
 * upstream-watch: for every external parent in the lineage, its tag resolved to a digest through the registry's
 * distribution API; the digest seen is recorded as a version of the external image (the history drift counts
 * against). A moved tag starts a rebuild campaign rooted at the external image: its first internal images below are
 * started now, pinned to the new digest; every image below them follows through its own push. The campaign id derives
 * from the image and the new digest, so a second run (or a retry) finds the same campaign and starts nothing twice.
 */
export function makeUpstreamWatchHandler(deps: UpstreamWatchDependencies, services: RescanServices): (event: unknown) => Promise<UpstreamWatchResult> {
  const scope = deps.registryScope ?? RegistryScope.singleAccount();
  return async () => {
    const now = deps.now();
    const graph = await deps.lineage.loadGraph();
    const externals = [...graph.images()].filter((n) => n.tier === Tier.EXTERNAL && !scope.isInternal(n.image));
    const result: UpstreamWatchResult = { checked: 0, unchanged: 0, baselined: [], moved: [], errors: [], starts: [] };
    for (const external of externals) {
      const children = graph.children(external.image).map((c) => graph.require(c)).filter((c) => c.tier !== Tier.EXTERNAL);
      if (children.length === 0) continue;
      const ref = parseImageRef(external.image);
      // Pinned by digest: it cannot move.
      if (ref.digest !== undefined || ref.tag === undefined) continue;
      (result as { checked: number }).checked += 1;
      let digest: string;
      try {
        digest = (await services.registry.resolveDigest(ref)).digest;
      } catch (error) {
        if (!(error instanceof OciRegistryError)) throw error;
        result.errors.push({ image: external.image, code: error.code, message: error.message.slice(0, 300) });
        continue;
      }
      const last = await deps.lineage.currentVersion(external.image);
      if (last?.digest === digest) {
        (result as { unchanged: number }).unchanged += 1;
        continue;
      }
      await deps.lineage.putVersion({ image: external.image, digest, tags: [ref.tag], pushedAt: now.toISOString() });
      if (!last) {
        result.baselined.push(external.image);
        continue;
      }
      const move = await startUpstreamCampaign(deps, scope, services, graph, external.image, last.digest, digest);
      result.moved.push(move.move);
      result.starts.push(...move.starts);
    }
    logger.info('upstream watch', { checked: result.checked, moved: result.moved.length, baselined: result.baselined.length, errors: result.errors.length });
    return result;
  };
}

async function startUpstreamCampaign(
  deps: HandlerDependencies,
  scope: RegistryScope,
  services: RescanServices,
  graph: LineageGraph,
  external: string,
  from: string,
  to: string,
): Promise<{ move: UpstreamMove; starts: Array<{ name: string; input: RebuildRequest }> }> {
  const id = deriveCampaignId(external, to);
  const descendants = (await deps.lineage.descendants(external)).filter((d) => d.tier !== Tier.EXTERNAL);
  const members = new Set(descendants.map((d) => d.image));
  const priorities = criticalPathPriorities(graph, members, () => deps.defaultBuildSeconds);
  const created = await deps.campaigns.create(
    {
      campaignId: id,
      rootImage: external,
      rootDigest: to,
      trigger: CampaignTrigger.UPSTREAM,
      reason: `upstream ${external} moved from ${from} to ${to}`,
      startedAt: deps.now().toISOString(),
      memberCount: descendants.length,
    },
    descendants.map((d) => ({ image: d.image, priority: priorities.get(d.image) ?? deps.defaultBuildSeconds, parents: d.parents.map((p) => p.image) })),
  );
  // A retried run finds the campaign created: it is counted once.
  if (created) deps.metrics?.count(PatchlineMetric.CAMPAIGNS_STARTED, 1);
  const children = graph.children(external).map((c) => graph.require(c)).filter((c) => c.tier !== Tier.EXTERNAL);
  const states = await deps.campaigns.memberStates(id, children.map((c) => c.image));
  const otherParents = new Map<string, string | undefined>();
  for (const child of children) {
    for (const p of child.parents) {
      if (p.image !== external && !otherParents.has(p.image)) otherParents.set(p.image, (await deps.lineage.currentVersion(p.image))?.digest);
    }
  }
  const { account, region } = services.settings;
  const decision = decideRebuilds({
    campaignId: id,
    pushedImage: external,
    pushedDigest: to,
    children,
    // Parents outside the campaign (a second base) are taken as they are now.
    memberState: (image) => (members.has(image) ? states.get(image)?.state ?? MemberState.PENDING : undefined),
    parentDigest: (image) => otherParents.get(image),
    // Each parent pinned in its own registry (a bare key in the scanned one, as before an organization).
    imageUri: (image, digest) => scope.pinnedReference(image, digest, { account, region }),
    priority: (image) => priorities.get(image) ?? deps.defaultBuildSeconds,
    // A spoke image is rebuilt in its own account, as image-pushed places it.
    placement: (image) => scope.placement(image),
  });
  const starts = decision.start.map((request) => ({ name: request.executionName, input: request }));
  logger.info('upstream campaign', { campaignId: id, external, from, to, starts: starts.length, skipped: decision.skip.length });
  return {
    move: { image: external, from, to, campaignId: id, rebuilding: decision.start.map((s) => s.image), skipped: decision.skip },
    starts,
  };
}

let environmentDependencies: UpstreamWatchDependencies | undefined;

export const handler = (event: unknown): Promise<UpstreamWatchResult> => {
  environmentDependencies ??= { ...dependenciesFromEnvironment(), registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]) };
  const deps = environmentDependencies;
  return publishingMetrics(deps, makeUpstreamWatchHandler(deps, rescanServicesFromEnvironment()))(event);
};
