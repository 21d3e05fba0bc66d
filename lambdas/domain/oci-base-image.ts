/**
 * The base image an image declares for itself: the OCI annotations `org.opencontainers.image.base.name` and
 * `org.opencontainers.image.base.digest` on the manifest (what `docker buildx build --annotation …` and the Docker
 * Official Images write), else the same keys as labels in the image config (what a Dockerfile `LABEL` writes).
 */
import { z } from 'zod';
import { isDigest, parseImageRef } from './image-ref';
import { resolveParentKey } from './lineage';

export const BaseImageAnnotation = {
  NAME: 'org.opencontainers.image.base.name',
  DIGEST: 'org.opencontainers.image.base.digest',
} as const;
export type BaseImageAnnotation = (typeof BaseImageAnnotation)[keyof typeof BaseImageAnnotation];

export const ManifestMediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;
export type ManifestMediaType = (typeof ManifestMediaType)[keyof typeof ManifestMediaType];

export const BaseImageSource = { ANNOTATION: 'annotation', LABEL: 'label' } as const;
export type BaseImageSource = (typeof BaseImageSource)[keyof typeof BaseImageSource];

/** Why no base image was read. */
export const NoBaseImageReason = {
  /** An index or manifest list without the annotations: read the platform manifest instead. */
  INDEX: 'index-without-base-annotations',
  /** A manifest without the annotations, and no config given to read labels from. */
  CONFIG_NOT_GIVEN: 'config-not-given',
  /** Neither the manifest nor the config declares a base image. */
  NOT_DECLARED: 'not-declared',
} as const;
export type NoBaseImageReason = (typeof NoBaseImageReason)[keyof typeof NoBaseImageReason];

/** distribution's default limit on a manifest body; anything larger is refused before parsing. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs have no registry limit; 8 MiB is far above real ones (their history lists every layer). */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const MAX_NAME_LENGTH = 512;
const MAX_DIGEST_LENGTH = 'sha512:'.length + 128;

export interface BaseImage {
  /** The base image reference as declared (`docker.io/library/debian:bookworm-slim`). */
  readonly name?: string;
  /** Its lineage key (`debian:bookworm-slim`), as a Dockerfile FROM of the same reference would key it. */
  readonly image?: string;
  readonly digest?: string;
  readonly source: BaseImageSource;
}

export type BaseImageLookup =
  | { readonly found: true; readonly baseImage: BaseImage; readonly mediaType?: ManifestMediaType }
  | { readonly found: false; readonly reason: NoBaseImageReason; readonly mediaType?: ManifestMediaType };

export class InvalidManifestError extends Error {
  public readonly code = 'INVALID_MANIFEST';
  public constructor(reason: string, options?: { cause?: unknown }) {
    super(`invalid image manifest: ${reason}`, options);
    this.name = 'InvalidManifestError';
  }
}

export class UnsupportedManifestError extends Error {
  public readonly code = 'UNSUPPORTED_MANIFEST';
  public constructor(public readonly mediaType: string, options?: { cause?: unknown }) {
    super(
      `unsupported manifest media type ${JSON.stringify(truncate(mediaType))}; expected one of ${Object.values(ManifestMediaType).join(', ')}`,
      options,
    );
    this.name = 'UnsupportedManifestError';
  }
}

export class InvalidImageConfigError extends Error {
  public readonly code = 'INVALID_IMAGE_CONFIG';
  public constructor(reason: string, options?: { cause?: unknown }) {
    super(`invalid image config: ${reason}`, options);
    this.name = 'InvalidImageConfigError';
  }
}

export class InvalidBaseImageAnnotationError extends Error {
  public readonly code = 'INVALID_BASE_IMAGE_ANNOTATION';
  public constructor(
    public readonly key: BaseImageAnnotation,
    public readonly source: BaseImageSource,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${source} ${key} refused: ${reason}`, options);
    this.name = 'InvalidBaseImageAnnotationError';
  }
}

export class BaseImageDigestConflictError extends Error {
  public readonly code = 'BASE_IMAGE_DIGEST_CONFLICT';
  public constructor(public readonly baseName: string, public readonly digest: string, public readonly source: BaseImageSource) {
    super(`${source} ${BaseImageAnnotation.NAME} pins ${JSON.stringify(baseName)}, but ${BaseImageAnnotation.DIGEST} is ${digest}`);
    this.name = 'BaseImageDigestConflictError';
  }
}

function truncate(value: string): string {
  return value.length > 120 ? `${value.slice(0, 120)}…(${value.length} chars)` : value;
}

/** Keys other than ours are not judged: the spec says string values, but one odd annotation must not hide the base. */
const AnnotationsSchema = z.record(z.string(), z.unknown());

const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.enum([ManifestMediaType.OCI_MANIFEST, ManifestMediaType.DOCKER_MANIFEST]).optional(),
  config: z.object({ mediaType: z.string().max(255), digest: z.string().refine(isDigest, 'not a digest') }),
  layers: z.array(z.unknown()),
  annotations: AnnotationsSchema.optional(),
});

const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.enum([ManifestMediaType.OCI_INDEX, ManifestMediaType.DOCKER_MANIFEST_LIST]).optional(),
  manifests: z.array(z.unknown()),
  annotations: AnnotationsSchema.optional(),
});

/** Docker writes `"Labels": null` when an image has none. */
const ImageConfigSchema = z.object({
  config: z
    .object({ Labels: AnnotationsSchema.nullable().optional() })
    .nullable()
    .optional(),
});

export type ImageManifest = z.infer<typeof ImageManifestSchema>;
export type ImageIndex = z.infer<typeof ImageIndexSchema>;
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

const BaseNameSchema = z.string().min(1).max(MAX_NAME_LENGTH, `longer than ${MAX_NAME_LENGTH} characters`);
const BaseDigestSchema = z
  .string()
  .min(1)
  .max(MAX_DIGEST_LENGTH, `longer than ${MAX_DIGEST_LENGTH} characters`)
  .refine(isDigest, 'not sha256:<64 hex> or sha512:<128 hex>');

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Accepts a parsed document or its raw JSON text (refused above `maxBytes`). */
function toDocument(input: unknown, maxBytes: number, fail: (reason: string, cause?: unknown) => Error): unknown {
  if (typeof input !== 'string') return input;
  const bytes = Buffer.byteLength(input, 'utf8');
  if (bytes > maxBytes) throw fail(`${bytes} bytes, more than the ${maxBytes} allowed`);
  try {
    return JSON.parse(input);
  } catch (error) {
    throw fail(`not JSON: ${(error as Error).message}`, error);
  }
}

type ParsedManifest = { readonly kind: 'manifest' | 'index'; readonly mediaType?: ManifestMediaType; readonly annotations?: Record<string, unknown> };

function parseManifest(manifestJson: unknown): ParsedManifest {
  const fail = (reason: string, cause?: unknown) => new InvalidManifestError(reason, { cause });
  const document = toDocument(manifestJson, MAX_MANIFEST_BYTES, fail);
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw fail('not a JSON object');
  const { mediaType, manifests, config } = document as Record<string, unknown>;
  if (mediaType !== undefined && !(Object.values(ManifestMediaType) as unknown[]).includes(mediaType)) {
    throw new UnsupportedManifestError(String(mediaType));
  }
  // OCI lets mediaType be absent; the document's shape then tells an index from a manifest.
  const isIndex =
    mediaType === ManifestMediaType.OCI_INDEX ||
    mediaType === ManifestMediaType.DOCKER_MANIFEST_LIST ||
    (mediaType === undefined && manifests !== undefined && config === undefined);
  const parsed = (isIndex ? ImageIndexSchema : ImageManifestSchema).safeParse(document);
  if (!parsed.success) throw fail(describeIssues(parsed.error), parsed.error);
  return { kind: isIndex ? 'index' : 'manifest', mediaType: parsed.data.mediaType, annotations: parsed.data.annotations };
}

function parseLabels(configJson: unknown): Record<string, unknown> | undefined {
  const fail = (reason: string, cause?: unknown) => new InvalidImageConfigError(reason, { cause });
  const document = toDocument(configJson, MAX_CONFIG_BYTES, fail);
  const parsed = ImageConfigSchema.safeParse(document);
  if (!parsed.success) throw fail(describeIssues(parsed.error), parsed.error);
  return parsed.data.config?.Labels ?? undefined;
}

/** Own properties only: a `__proto__` key in hostile JSON must not lend inherited values. */
function own(values: Record<string, unknown> | undefined, key: BaseImageAnnotation): unknown {
  return values !== undefined && Object.hasOwn(values, key) ? values[key] : undefined;
}

/** An empty value says nothing; BuildKit writes one for `--annotation key=`. */
function isDeclared(values: Record<string, unknown> | undefined): values is Record<string, unknown> {
  return [BaseImageAnnotation.NAME, BaseImageAnnotation.DIGEST].some((key) => {
    const value = own(values, key);
    return value !== undefined && value !== '';
  });
}

function readDeclared(values: Record<string, unknown>, source: BaseImageSource): BaseImage {
  const rawName = own(values, BaseImageAnnotation.NAME);
  const rawDigest = own(values, BaseImageAnnotation.DIGEST);
  let name: string | undefined;
  let image: string | undefined;
  let digest: string | undefined;
  if (rawName !== undefined && rawName !== '') {
    const parsed = BaseNameSchema.safeParse(rawName);
    if (!parsed.success) {
      throw new InvalidBaseImageAnnotationError(BaseImageAnnotation.NAME, source, describeIssues(parsed.error), { cause: parsed.error });
    }
    try {
      const ref = parseImageRef(parsed.data);
      name = parsed.data;
      image = resolveParentKey(parsed.data, () => false);
      digest = ref.digest;
    } catch (error) {
      throw new InvalidBaseImageAnnotationError(BaseImageAnnotation.NAME, source, (error as Error).message, { cause: error });
    }
  }
  if (rawDigest !== undefined && rawDigest !== '') {
    const parsed = BaseDigestSchema.safeParse(rawDigest);
    if (!parsed.success) {
      throw new InvalidBaseImageAnnotationError(BaseImageAnnotation.DIGEST, source, describeIssues(parsed.error), { cause: parsed.error });
    }
    if (digest !== undefined && digest !== parsed.data) throw new BaseImageDigestConflictError(name!, parsed.data, source);
    digest = parsed.data;
  }
  return { ...(name !== undefined ? { name, image } : {}), ...(digest !== undefined ? { digest } : {}), source };
}

/**
 * Reads the declared base image, saying why when there is none. Manifest (or index) annotations win over config
 * labels; the two are never mixed, so name and digest always come from the same declaration.
 */
export function readBaseImage(manifestJson: unknown, configJson?: unknown): BaseImageLookup {
  const manifest = parseManifest(manifestJson);
  const mediaType = manifest.mediaType !== undefined ? { mediaType: manifest.mediaType } : {};
  if (isDeclared(manifest.annotations)) {
    return { found: true, baseImage: readDeclared(manifest.annotations, BaseImageSource.ANNOTATION), ...mediaType };
  }
  if (configJson === undefined) {
    return { found: false, reason: manifest.kind === 'index' ? NoBaseImageReason.INDEX : NoBaseImageReason.CONFIG_NOT_GIVEN, ...mediaType };
  }
  const labels = parseLabels(configJson);
  if (isDeclared(labels)) return { found: true, baseImage: readDeclared(labels, BaseImageSource.LABEL), ...mediaType };
  return { found: false, reason: NoBaseImageReason.NOT_DECLARED, ...mediaType };
}

/** The declared base image, or undefined when neither the manifest nor the config declares one (see readBaseImage). */
export function baseImageFromManifest(manifestJson: unknown, configJson?: unknown): BaseImage | undefined {
  const lookup = readBaseImage(manifestJson, configJson);
  return lookup.found ? lookup.baseImage : undefined;
}
