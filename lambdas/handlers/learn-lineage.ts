import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECRClient } from '@aws-sdk/client-ecr';
import { Logger } from '@aws-lambda-powertools/logger';
import { BlobDigestMismatchError, BlobTooLargeError, EcrImages, SdkEcrImages } from '../aws/ecr-images';
import { awsSpokeEcrImages, SpokeEcrImages } from '../aws/spoke-ecr-images';
import { parseEcrPushEvent } from '../domain/ecr-push-event';
import { InvalidImageReferenceError, parseImageRef } from '../domain/image-ref';
import {
  configDigestOf,
  DEFAULT_BUILD_PROJECT_TAG_KEY,
  DEFAULT_OWNER_TAG_KEY,
  ecrRepositoryArn,
  fieldsFromRepositoryTags,
  LearnedPush,
  LearnedSource,
  learnFromPush,
  learnLineageSessionName,
  LineageChange,
  NoPlatformManifestError,
  OwnerSource,
  parentKeyOfBase,
  platformManifestDigest,
  PushFacts,
  RepositoryTagPolicy,
  TaggedFields,
} from '../domain/learned-lineage';
import { LineageCycleError } from '../domain/lineage';
import {
  BaseImage,
  BaseImageDigestConflictError,
  InvalidBaseImageAnnotationError,
  InvalidImageConfigError,
  InvalidManifestError,
  MAX_CONFIG_BYTES,
  NoBaseImageReason,
  readBaseImage,
  UnsupportedManifestError,
} from '../domain/oci-base-image';
import { parseRegistryKey, REGISTRY_SCOPE_ENV, RegistryScope } from '../domain/registry-scope';
import { LineageTooDeepError } from '../store/dynamo-lineage-store';
import { DiscoveryStore } from '../store/discovery-store';
import { ImageKeyTooLongError, ImageUpdate, TooManyParentsError } from '../store/lineage-store';
import { dependenciesFromEnvironment, HandlerDependencies, requireEnv } from './dependencies';
import { traced } from '../aws/traced-client';

const logger = new Logger({ serviceName: 'patchline-learn-lineage' });

/** What learn-lineage did with a push. */
export const LearnOutcome = {
  /** The declared base was stored as the image's runtime parent (the image added or re-parented). */
  LEARNED: 'learned',
  /** The declared base is already the runtime parent; only the parent digest (and any tag-read owner) was recorded. */
  UNCHANGED: 'unchanged',
  /** Neither the manifest, the index nor the config declares a base. */
  NOT_DECLARED: 'not-declared',
  /** The registry has no such image (deleted since, or without an organization an event of another account): nothing to read. */
  IMAGE_NOT_FOUND: 'image-not-found',
  /** The declaration was refused (hostile value, cycle, bad blob): nothing stored was changed; the reason is recorded. */
  REFUSED: 'refused',
} as const;
export type LearnOutcome = (typeof LearnOutcome)[keyof typeof LearnOutcome];

export interface LearnLineageResult {
  readonly image: string;
  readonly digest: string;
  readonly outcome: LearnOutcome;
  readonly change: LineageChange | null;
  readonly parent: string | null;
  readonly parentDigest: string | null;
  readonly source: LearnedSource | null;
  readonly owner: string | null;
  /** `lineage` when the lineage already named the owner, `repository-tag` when it was read now, null when unowned. */
  readonly ownerSource: 'lineage' | OwnerSource | null;
  readonly reason: string | null;
}

export interface LearnLineageSettings {
  /** The hub's registry (the only one without an organization). */
  readonly ecr: EcrImages;
  /** The configured spokes' registries, through their hub-access roles; without it a spoke push is not read. */
  readonly spokes?: SpokeEcrImages;
  readonly discovery: DiscoveryStore;
  readonly tags: RepositoryTagPolicy;
}

/** The shared dependencies plus what only learn-lineage needs (kept out of HandlerDependencies, which others own). */
export type LearnLineageDependencies = HandlerDependencies & { readonly learnLineage?: LearnLineageSettings; readonly registryScope?: RegistryScope };

export class MissingLearnLineageDependenciesError extends Error {
  public readonly code = 'MISSING_LEARN_LINEAGE_DEPENDENCIES';
  public constructor() {
    super('learn-lineage needs learnLineage (ECR reader, discovery store, tag policy) in its dependencies');
    this.name = 'MissingLearnLineageDependenciesError';
  }
}

/** learn-lineage's own dependencies, for the Lambda, the local runtime and the tests. */
export function learnLineageDependencies(props: {
  client: DynamoDBClient;
  tableName: string;
  ecr: EcrImages;
  spokes?: SpokeEcrImages;
  ownerTagKey?: string;
  buildProjectTagKey?: string;
  knownOwners?: readonly string[];
  buildProjects?: readonly string[];
}): { learnLineage: LearnLineageSettings } {
  return {
    learnLineage: {
      ecr: props.ecr,
      ...(props.spokes ? { spokes: props.spokes } : {}),
      discovery: new DiscoveryStore({ client: props.client, tableName: props.tableName }),
      tags: {
        ownerTagKey: props.ownerTagKey || DEFAULT_OWNER_TAG_KEY,
        buildProjectTagKey: props.buildProjectTagKey || DEFAULT_BUILD_PROJECT_TAG_KEY,
        ...(props.knownOwners ? { knownOwners: props.knownOwners } : {}),
        ...(props.buildProjects ? { buildProjects: props.buildProjects } : {}),
      },
    },
  };
}

/** Refusals of what a pushed image declares: recorded and reported, never retried (the image will not change). */
const REFUSALS = [
  InvalidManifestError,
  UnsupportedManifestError,
  InvalidImageConfigError,
  InvalidBaseImageAnnotationError,
  BaseImageDigestConflictError,
  InvalidImageReferenceError,
  NoPlatformManifestError,
  BlobTooLargeError,
  BlobDigestMismatchError,
  LineageCycleError,
  TooManyParentsError,
  ImageKeyTooLongError,
  LineageTooDeepError,
];

/**
 * learn-lineage: reads the pushed image's manifest (and, when needed, its platform manifest and config) from ECR (the
 * hub's, or a configured spoke's through that spoke's hub-access role), and when it declares a base stores it as the
 * image's runtime parent and the base digest on the version. An image with no owner or build project takes them from
 * its repository's tags. Runs before DecideRebuilds, so a push that taught a new child is already in the lineage when
 * the next push of its parent cascades.
 */
export function makeLearnLineageHandler(deps: LearnLineageDependencies): (event: unknown) => Promise<LearnLineageResult> {
  const scope = deps.registryScope ?? RegistryScope.singleAccount();
  return async (event) => {
    const push = parseEcrPushEvent(event);
    const settings = deps.learnLineage;
    if (!settings) throw new MissingLearnLineageDependenciesError();
    // Keyed as image-pushed keys it; an account/region that is not configured is refused before anything is read.
    const image = scope.keyOf(push.account, push.region, push.repository);
    const at = deps.now().toISOString();
    const result = (outcome: LearnOutcome, fields: Partial<LearnLineageResult> = {}): LearnLineageResult => ({
      image,
      digest: push.digest,
      outcome,
      change: null,
      parent: null,
      parentDigest: null,
      source: null,
      owner: null,
      ownerSource: null,
      reason: null,
      ...fields,
    });
    const inSpoke = scope.isSpoke(push.account, push.region);
    if (inSpoke && !settings.spokes) {
      return result(LearnOutcome.IMAGE_NOT_FOUND, { reason: `${image} is in a spoke registry and no spoke reader is configured: declare its lineage in the lineage file` });
    }
    // A spoke's image is read in its own registry, as its hub-access role; the hub's (or a single account's) as ourselves.
    const ecr = inSpoke ? await settings.spokes!.readerOf({ account: push.account, region: push.region }, learnLineageSessionName(push.repository, push.digest)) : settings.ecr;
    try {
      const declared = await readDeclaredBase(ecr, push.repository, push.digest);
      if (!declared) return result(LearnOutcome.IMAGE_NOT_FOUND, { reason: `ECR has no image ${image}@${push.digest}` });

      const parentKey = declared.base ? parentKeyInScope(scope, declared.base, push) : undefined;
      const facts: PushFacts = {
        image,
        ...(parentKey !== undefined ? { parent: parentKey } : {}),
        ...(declared.base?.digest ? { baseDigest: declared.base.digest } : {}),
      };
      let tags: TaggedFields | undefined;
      let learned!: LearnedPush;
      // The store calls this with the node it reads under its write lease, and writes (validating the whole lineage,
      // cycles included) what the last call returned: a concurrent push of the same image is read, never overwritten.
      const learn: ImageUpdate = (current) => {
        learned = learnFromPush(current, { ...facts, ...(tags ? { tags } : {}) });
        return learned.write ? learned.node : undefined;
      };
      await deps.lineage.updateImage(image, learn);
      if (learned.needsTags) {
        // The node lacks an owner or build project: read the repository's tags (outside the lease) and decide again.
        tags = fieldsFromRepositoryTags(await ecr.repositoryTags(ecrRepositoryArn(push.account, push.region, push.repository)), settings.tags);
        await deps.lineage.updateImage(image, learn);
        if (tags.owner || tags.project || tags.notes.length > 0) {
          await settings.discovery.recordTagged(image, {
            at,
            source: OwnerSource.REPOSITORY_TAG,
            ...(learned.taken.owner ? { owner: learned.taken.owner } : {}),
            ...(learned.taken.project ? { project: learned.taken.project } : {}),
            notes: tags.notes.map((n) => n.slice(0, 300)),
          });
        }
        if (tags.notes.length > 0) logger.warn('repository tags refused', { image, notes: tags.notes });
      }
      const { change, previousParent, parent, ownerSource, node } = learned;

      const parentDigest = parent !== undefined ? declared.base?.digest : undefined;
      if (parent !== undefined && parentDigest !== undefined) {
        await deps.lineage.putVersion({ image, digest: push.digest, tags: push.tag ? [push.tag] : [], pushedAt: push.pushedAt, parentDigests: { [parent]: parentDigest } });
      }
      if (parent !== undefined && change !== null && declared.source) {
        await settings.discovery.recordLearned(image, {
          digest: push.digest,
          at,
          source: declared.source,
          change,
          parent,
          ...(declared.base?.name ? { baseName: declared.base.name } : {}),
          ...(parentDigest ? { baseDigest: parentDigest } : {}),
          ...(previousParent ? { previousParent } : {}),
        });
      }
      const outcome = change === LineageChange.ADDED || change === LineageChange.REPARENTED ? LearnOutcome.LEARNED : declared.base ? LearnOutcome.UNCHANGED : LearnOutcome.NOT_DECLARED;
      logger.info('lineage learned', { image, digest: push.digest, outcome, parent, previousParent, source: declared.source, ownerSource });
      return result(outcome, {
        change,
        parent: parent ?? null,
        parentDigest: parentDigest ?? null,
        source: declared.source ?? null,
        owner: node?.owner ?? null,
        ownerSource,
        ...(declared.base && parent === undefined ? { reason: 'the base declares a digest only, and the image has no runtime parent to give it to' } : {}),
      });
    } catch (error) {
      if (!REFUSALS.some((type) => error instanceof type)) throw error;
      const { code, message } = error as Error & { code: string };
      await settings.discovery.recordRefused(image, { digest: push.digest, at, code, reason: message });
      logger.warn('lineage declaration refused', { image, digest: push.digest, code, reason: message });
      return result(LearnOutcome.REFUSED, { reason: message });
    }
  };
}

/** A base in the hub's or a spoke's registry is keyed through the scope (a team image built FROM a platform image). */
function parentKeyInScope(scope: RegistryScope, base: BaseImage, push: { account: string; region: string }): string | undefined {
  if (base.name === undefined) return undefined;
  const ref = parseImageRef(base.name);
  const registry = parseRegistryKey(`${ref.registry}/${ref.repository}`);
  if (registry && (scope.isHub(registry.account, registry.region) || scope.isSpoke(registry.account, registry.region))) {
    return scope.keyOf(registry.account, registry.region, registry.repository);
  }
  return parentKeyOfBase(base, push);
}

interface DeclaredBase {
  readonly base?: BaseImage;
  readonly source?: LearnedSource;
}

/**
 * The base the pushed image declares: the index's or manifest's annotations, else (for an index) those of its
 * platform manifest, else the config's labels (one more blob read). Undefined when ECR has no such image.
 */
async function readDeclaredBase(ecr: EcrImages, repository: string, digest: string): Promise<DeclaredBase | undefined> {
  const top = await ecr.getManifest(repository, digest);
  if (!top) return undefined;
  let lookup = readBaseImage(top.body);
  if (lookup.found) return { base: lookup.baseImage, source: isIndex(top.body) ? LearnedSource.INDEX_ANNOTATION : LearnedSource.MANIFEST_ANNOTATION };
  let manifest = top.body;
  if (lookup.reason === NoBaseImageReason.INDEX) {
    const platform = await ecr.getManifest(repository, platformManifestDigest(top.body));
    if (!platform) return {};
    lookup = readBaseImage(platform.body);
    if (lookup.found) return { base: lookup.baseImage, source: LearnedSource.MANIFEST_ANNOTATION };
    manifest = platform.body;
  }
  if (lookup.reason !== NoBaseImageReason.CONFIG_NOT_GIVEN) return {};
  const config = await ecr.getBlob(repository, configDigestOf(manifest), MAX_CONFIG_BYTES);
  lookup = readBaseImage(manifest, config);
  return lookup.found ? { base: lookup.baseImage, source: LearnedSource.CONFIG_LABEL } : {};
}

/** readBaseImage accepted the document, so it is JSON; an index lists manifests and has no config. */
function isIndex(body: string): boolean {
  const document = JSON.parse(body) as Record<string, unknown>;
  return document.manifests !== undefined && document.config === undefined;
}

const list = (value: string | undefined): string[] | undefined => (value ? value.split(',').map((v) => v.trim()).filter(Boolean) : undefined);

let fromEnvironment: LearnLineageDependencies | undefined;

/** TABLE_NAME, OWNER_TAG_KEY, BUILD_PROJECT_TAG_KEY, KNOWN_OWNERS and BUILD_PROJECTS (comma-separated), once per container. */
function learnLineageFromEnvironment(): LearnLineageDependencies {
  fromEnvironment ??= {
    ...dependenciesFromEnvironment(),
    registryScope: RegistryScope.fromEnvironment(process.env[REGISTRY_SCOPE_ENV]),
    ...learnLineageDependencies({
      client: traced(new DynamoDBClient({})),
      tableName: requireEnv('TABLE_NAME'),
      ecr: new SdkEcrImages({ client: traced(new ECRClient({})) }),
      spokes: awsSpokeEcrImages(),
      ownerTagKey: process.env.OWNER_TAG_KEY,
      buildProjectTagKey: process.env.BUILD_PROJECT_TAG_KEY,
      knownOwners: list(process.env.KNOWN_OWNERS),
      buildProjects: list(process.env.BUILD_PROJECTS),
    }),
  };
  return fromEnvironment;
}

export const handler = (event: unknown): Promise<LearnLineageResult> => makeLearnLineageHandler(learnLineageFromEnvironment())(event);
