/**
 * Lineage learned from a pushed image: its declared base (oci-base-image.ts) turned into a lineage key and a change to
 * the image's node, and the owner and build project read from its ECR repository's tags. Pure: the handler does the I/O.
 */
import { z } from 'zod';
import { isDigest, parseImageRef } from './image-ref';
import { ImageNode, isInternalImageKey, ParentEdge, ParentRole, Tier } from './lineage';
import { BaseImage, InvalidManifestError } from './oci-base-image';

/** How a learned node changed the lineage. */
export const LineageChange = {
  /** The image was not in the lineage: it was added below its base. */
  ADDED: 'added',
  /** The image's runtime parent was replaced (its other parents kept). */
  REPARENTED: 'reparented',
  /** The declared base is the runtime parent already: nothing written. */
  UNCHANGED: 'unchanged',
} as const;
export type LineageChange = (typeof LineageChange)[keyof typeof LineageChange];

/** Where the base image was declared. */
export const LearnedSource = {
  INDEX_ANNOTATION: 'index-annotation',
  MANIFEST_ANNOTATION: 'manifest-annotation',
  CONFIG_LABEL: 'config-label',
} as const;
export type LearnedSource = (typeof LearnedSource)[keyof typeof LearnedSource];

/** Where the owner (or build project) of an image came from when the lineage did not name one. */
export const OwnerSource = { REPOSITORY_TAG: 'repository-tag' } as const;
export type OwnerSource = (typeof OwnerSource)[keyof typeof OwnerSource];

export class InvalidRepositoryTagError extends Error {
  public readonly code = 'INVALID_REPOSITORY_TAG';
  public constructor(public readonly key: string, reason: string, options?: { cause?: unknown }) {
    super(`repository tag ${JSON.stringify(key)} refused: ${reason}`, options);
    this.name = 'InvalidRepositoryTagError';
  }
}

export class NoPlatformManifestError extends Error {
  public readonly code = 'NO_PLATFORM_MANIFEST';
  public constructor(reason: string, options?: { cause?: unknown }) {
    super(`image index has no platform manifest to read: ${reason}`, options);
    this.name = 'NoPlatformManifestError';
  }
}

/** Same rules as owner ids in patchline.config.json: a hostile tag value never reaches the store or an SNS filter. */
const OWNER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** CodeBuild project names. */
const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/;

/** `123456789012.dkr.ecr.eu-west-1.amazonaws.com` (`.com.cn` in China): the pushing account's own registry. */
export function ecrRegistryHost(account: string, region: string): string {
  return `${account}.dkr.ecr.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

/** The ARN ListTagsForResource takes for a repository. */
export function ecrRepositoryArn(account: string, region: string, repository: string): string {
  const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
  return `arn:${partition}:ecr:${region}:${account}:repository/${repository}`;
}

/**
 * The STS session name under which learn-lineage reads a spoke's registry (shows in the spoke's CloudTrail): the pushed
 * digest's first 12 hex digits, then the repository, within STS's 64 characters of `[\w+=,.@-]`.
 */
export function learnLineageSessionName(repository: string, digest: string): string {
  const hex = (digest.split(':')[1] ?? digest).replace(/[^0-9a-f]/gi, '').slice(0, 12);
  return `learn-${hex}-${repository.replace(/[^\w+=,.@-]/g, '.')}`.slice(0, 64);
}

/**
 * The lineage key of a declared base: a repository of the pushing account's own registry is an internal image (its
 * bare repository name, as lineage files write it); anything else keeps the external key readBaseImage gave it.
 */
export function parentKeyOfBase(base: BaseImage, registry: { account: string; region: string }): string | undefined {
  if (base.name === undefined) return undefined;
  const ref = parseImageRef(base.name);
  if (ref.registry === ecrRegistryHost(registry.account, registry.region)) return ref.repository;
  return base.image;
}

/**
 * True when `declared` names the same image as `current`: equal keys, or the same external repository where the
 * declaration pins a digest without a tag (a rebuild's `BASE_IMAGE=repo@sha256:…` of a parent declared by tag).
 */
export function sameParent(current: string, declared: string): boolean {
  if (current === declared) return true;
  if (isInternalImageKey(current) || isInternalImageKey(declared)) return false;
  try {
    const a = parseImageRef(current);
    const b = parseImageRef(declared);
    return a.registry === b.registry && a.repository === b.repository && (b.tag === undefined || b.tag === a.tag);
  } catch {
    return false;
  }
}

/**
 * A repository's tier when nothing declared it, after the naming the lineage files use (`enterprise/…`, `builders/…`,
 * `vendor/…`); anything else built from a base is an application image.
 */
export function inferTier(repository: string): Tier {
  const top = repository.split('/')[0];
  if (top === 'enterprise') return Tier.ENTERPRISE;
  if (top === 'base') return Tier.BASE;
  if (top === 'builder' || top === 'builders') return Tier.BUILDER;
  if (top === 'vendor' || top === 'cots') return Tier.COTS;
  return Tier.APPLICATION;
}

export interface LearnedParent {
  readonly change: LineageChange;
  /** The node to store (the existing one when unchanged). */
  readonly node: ImageNode;
  /** The runtime parent it had before, when it was replaced. */
  readonly previousParent?: string;
}

/**
 * The node of `image` with `parent` as its runtime parent. Only a different runtime parent is written: the image's
 * build-stage parents, owner, tier and build project are kept. An image known only as someone's parent (an `external`
 * placeholder) that is pushed to our registry gets a real tier.
 */
export function learnRuntimeParent(existing: ImageNode | undefined, image: string, parent: string): LearnedParent {
  const edge: ParentEdge = { image: parent, role: ParentRole.RUNTIME };
  if (!existing) return { change: LineageChange.ADDED, node: { image, tier: inferTier(image), parents: [edge] } };
  const runtime = existing.parents.find((p) => p.role === ParentRole.RUNTIME);
  const placeholder = existing.tier === Tier.EXTERNAL && isInternalImageKey(image);
  if (runtime && sameParent(runtime.image, parent) && !placeholder) return { change: LineageChange.UNCHANGED, node: existing };
  const kept = existing.parents.filter((p) => p.role !== ParentRole.RUNTIME && !sameParent(p.image, parent));
  const node: ImageNode = {
    ...existing,
    tier: placeholder ? inferTier(image) : existing.tier,
    parents: [runtime && sameParent(runtime.image, parent) ? runtime : edge, ...kept],
  };
  return { change: LineageChange.REPARENTED, node, ...(runtime && !sameParent(runtime.image, parent) ? { previousParent: runtime.image } : {}) };
}

/** What a push tells about its image, read from the registry before the lineage is. */
export interface PushFacts {
  readonly image: string;
  /** The lineage key of the base the push declares by name; undefined when it declares none, or a digest only. */
  readonly parent?: string;
  /** The digest of the declared base, when it gives one. */
  readonly baseDigest?: string;
  /** The owner and build project its repository's tags name, once read; without them an image lacking either asks for them. */
  readonly tags?: TaggedFields;
}

export interface LearnedPush {
  /** The image's node after the push; undefined when it is not in the lineage and the push declares no base. */
  readonly node?: ImageNode;
  /** True when `node` differs from the stored one and must be written. */
  readonly write: boolean;
  /** How the runtime parent changed; null when the push declares no named base. */
  readonly change: LineageChange | null;
  /** The runtime parent it had before, when it was replaced. */
  readonly previousParent?: string;
  /** The key the base digest is recorded under: the runtime parent the declared base names. */
  readonly parent?: string;
  /** `lineage` when the stored node named the owner, `repository-tag` when the tags gave it now, null when unowned. */
  readonly ownerSource: 'lineage' | OwnerSource | null;
  /** The node lacks an owner or build project and no tags were given: read them and decide again (nothing to write yet). */
  readonly needsTags: boolean;
  /** The fields taken from the repository's tags: those the stored node lacked. */
  readonly taken: { readonly owner?: string; readonly project?: string };
}

/**
 * What a push changes in its image's node, decided on the node as stored (`current`): the declared base becomes the
 * runtime parent (learnRuntimeParent), and a missing owner or build project is taken from the repository's tags. Pure,
 * so the store can call it again with the node it reads under its write lease.
 */
export function learnFromPush(current: ImageNode | undefined, facts: PushFacts): LearnedPush {
  let node = current;
  let change: LineageChange | null = null;
  let previousParent: string | undefined;
  let parent: string | undefined;
  if (facts.parent !== undefined) {
    const learned = learnRuntimeParent(current, facts.image, facts.parent);
    ({ node, change, previousParent } = learned);
    // A rebuild pins an external parent by digest: the declared tag stays the parent's key.
    parent = learned.node.parents.find((p) => p.role === ParentRole.RUNTIME)?.image ?? facts.parent;
  } else if (facts.baseDigest !== undefined && current) {
    // A digest without a name: it can only be the digest of the runtime parent already known.
    parent = current.parents.find((p) => p.role === ParentRole.RUNTIME)?.image;
  }
  const learnedParent = change === LineageChange.ADDED || change === LineageChange.REPARENTED;
  const base = { change, ...(previousParent ? { previousParent } : {}), ...(parent !== undefined ? { parent } : {}) };
  if (!node) return { ...base, write: false, ownerSource: null, needsTags: false, taken: {} };
  if (node.owner && node.build) return { ...base, node, write: learnedParent, ownerSource: 'lineage', needsTags: false, taken: {} };
  if (!facts.tags) return { ...base, node, write: false, ownerSource: node.owner ? 'lineage' : null, needsTags: true, taken: {} };
  const owner = node.owner ? undefined : facts.tags.owner;
  const project = node.build ? undefined : facts.tags.project;
  const taken = { ...(owner ? { owner } : {}), ...(project ? { project } : {}) };
  const withFields: ImageNode = { ...node, ...(owner ? { owner } : {}), ...(project ? { build: { project } } : {}) };
  return {
    ...base,
    node: withFields,
    write: learnedParent || owner !== undefined || project !== undefined,
    ownerSource: node.owner ? 'lineage' : owner ? OwnerSource.REPOSITORY_TAG : null,
    needsTags: false,
    taken,
  };
}

export const DEFAULT_OWNER_TAG_KEY = 'owner';
export const DEFAULT_BUILD_PROJECT_TAG_KEY = 'build-project';

export interface RepositoryTagPolicy {
  /** Tag key holding the owner id. */
  readonly ownerTagKey: string;
  /** Tag key holding the CodeBuild project that rebuilds the image. */
  readonly buildProjectTagKey: string;
  /** Configured owner ids: a tag naming another owner is not taken (its alerts would go nowhere). @default - any valid id */
  readonly knownOwners?: readonly string[];
  /** Configured project names or prefixes ending in `*` (what the rebuild role may start). @default - any valid name */
  readonly buildProjects?: readonly string[];
}

export interface TaggedFields {
  readonly owner?: string;
  readonly project?: string;
  /** Why a tag that was present was not taken. */
  readonly notes: readonly string[];
}

/** The owner and build project a repository's tags name, each validated; a refused value is a note, never stored. */
export function fieldsFromRepositoryTags(tags: Readonly<Record<string, string>>, policy: RepositoryTagPolicy): TaggedFields {
  const notes: string[] = [];
  const read = (key: string, pattern: RegExp, allowed: ((v: string) => boolean) | undefined, what: string): string | undefined => {
    if (!Object.hasOwn(tags, key)) return undefined;
    const value = tags[key];
    const shown = JSON.stringify(String(value).slice(0, 80));
    if (typeof value !== 'string' || !pattern.test(value)) {
      notes.push(new InvalidRepositoryTagError(key, `${shown} is not a valid ${what}`).message);
      return undefined;
    }
    if (allowed && !allowed(value)) {
      notes.push(new InvalidRepositoryTagError(key, `${shown} is not a configured ${what}`).message);
      return undefined;
    }
    return value;
  };
  const owner = read(policy.ownerTagKey, OWNER_ID, policy.knownOwners && ((v) => policy.knownOwners!.includes(v)), 'owner');
  const project = read(policy.buildProjectTagKey, PROJECT_NAME, policy.buildProjects && ((v) => policy.buildProjects!.some((p) => (p.endsWith('*') ? v.startsWith(p.slice(0, -1)) : v === p))), 'CodeBuild project');
  return { ...(owner !== undefined ? { owner } : {}), ...(project !== undefined ? { project } : {}), notes };
}

const DescriptorSchema = z.object({
  mediaType: z.string().max(255).optional(),
  digest: z.string().refine(isDigest, 'not a digest'),
  platform: z.object({ os: z.string().max(64), architecture: z.string().max(64), variant: z.string().max(64).optional() }).optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
});
const IndexManifestsSchema = z.object({ manifests: z.array(z.unknown()).max(1_000) });
const ManifestConfigSchema = z.object({ config: z.object({ digest: z.string().refine(isDigest, 'not a digest') }) });

/** Platforms preferred when an index has several; any other real platform comes after these. */
const PREFERRED_PLATFORMS = ['linux/amd64', 'linux/arm64'];

/**
 * The platform manifest to read a base from when an index declares none: linux/amd64, else linux/arm64, else the first
 * real platform. BuildKit's attestation manifests (`unknown/unknown`) are never chosen.
 */
export function platformManifestDigest(indexJson: string): string {
  let document: unknown;
  try {
    document = JSON.parse(indexJson);
  } catch (error) {
    throw new NoPlatformManifestError('not JSON', { cause: error });
  }
  const index = IndexManifestsSchema.safeParse(document);
  if (!index.success) throw new NoPlatformManifestError('no manifests list', { cause: index.error });
  const candidates = index.data.manifests.flatMap((m) => {
    const parsed = DescriptorSchema.safeParse(m);
    if (!parsed.success) return [];
    const d = parsed.data;
    const attestation = d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || d.platform?.os === 'unknown';
    return attestation ? [] : [{ digest: d.digest, platform: d.platform ? `${d.platform.os}/${d.platform.architecture}` : '' }];
  });
  if (candidates.length === 0) throw new NoPlatformManifestError('every entry is an attestation or malformed');
  const rank = (p: string): number => (PREFERRED_PLATFORMS.includes(p) ? PREFERRED_PLATFORMS.indexOf(p) : PREFERRED_PLATFORMS.length);
  return [...candidates].sort((a, b) => rank(a.platform) - rank(b.platform))[0].digest;
}

/** The config blob digest of an image manifest already accepted by readBaseImage. */
export function configDigestOf(manifestJson: string): string {
  let document: unknown;
  try {
    document = JSON.parse(manifestJson);
  } catch (error) {
    throw new InvalidManifestError('not JSON', { cause: error });
  }
  const parsed = ManifestConfigSchema.safeParse(document);
  if (!parsed.success) throw new InvalidManifestError('no config descriptor', { cause: parsed.error });
  return parsed.data.config.digest;
}
