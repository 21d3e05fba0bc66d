/**
 * A small OCI distribution (registry HTTP API v2) client on Node's built-in fetch: resolves tags to digests and reads
 * manifests, indexes and image configs from Docker Hub, Quay, registry.access.redhat.com, ECR and any v2 registry.
 * Anonymous bearer tokens (the `WWW-Authenticate: Bearer` challenge) and basic credentials are supported.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DOCKER_HUB, formatImageRef, ImageRef, isDigest } from '../domain/image-ref';

export const MediaType = {
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
} as const;
export type MediaType = (typeof MediaType)[keyof typeof MediaType];

const INDEX_MEDIA_TYPES: readonly string[] = [MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST];
const IMAGE_MEDIA_TYPES: readonly string[] = [MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST];
const MANIFEST_ACCEPT = [...INDEX_MEDIA_TYPES, ...IMAGE_MEDIA_TYPES].join(', ');

/** The OCI base-image annotations (image-spec annotations.md), also found as config labels. */
export const BASE_NAME_ANNOTATION = 'org.opencontainers.image.base.name';
export const BASE_DIGEST_ANNOTATION = 'org.opencontainers.image.base.digest';

const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------------------

const DigestSchema = z.string().refine(isDigest, { message: 'not a sha256/sha512 digest' });
const AnnotationsSchema = z.record(z.string(), z.string());

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

export const DescriptorSchema = z.object({
  mediaType: z.string(),
  digest: DigestSchema,
  size: z.number().int().nonnegative(),
  annotations: AnnotationsSchema.optional(),
  platform: PlatformSchema.optional(),
  urls: z.array(z.string()).optional(),
});
export type Descriptor = z.infer<typeof DescriptorSchema>;

export const ImageIndexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema),
  annotations: AnnotationsSchema.optional(),
});
export type ImageIndex = z.infer<typeof ImageIndexSchema>;

export const ImageManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: DescriptorSchema,
  layers: z.array(DescriptorSchema),
  annotations: AnnotationsSchema.optional(),
});
export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export const ImageConfigSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  created: z.string().optional(),
  // Docker writes `"Labels": null` when an image has none.
  config: z.looseObject({ Labels: AnnotationsSchema.nullable().optional() }).nullable().optional(),
  rootfs: z.object({ type: z.string(), diff_ids: z.array(DigestSchema) }).optional(),
});
export type ImageConfig = z.infer<typeof ImageConfigSchema>;

const TokenResponseSchema = z
  .object({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().positive().optional(),
  })
  .refine((t) => t.token !== undefined || t.access_token !== undefined, { message: 'neither token nor access_token' });

const RegistryErrorBodySchema = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string().optional() })),
});

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

export const RegistryErrorCode = {
  AUTH_FAILED: 'REGISTRY_AUTH_FAILED',
  MANIFEST_NOT_FOUND: 'MANIFEST_NOT_FOUND',
  BLOB_NOT_FOUND: 'BLOB_NOT_FOUND',
  PLATFORM_NOT_FOUND: 'PLATFORM_NOT_FOUND',
  UNAVAILABLE: 'REGISTRY_UNAVAILABLE',
  RATE_LIMITED: 'REGISTRY_RATE_LIMITED',
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  RESPONSE_TOO_LARGE: 'RESPONSE_TOO_LARGE',
  INVALID_MANIFEST: 'INVALID_MANIFEST',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  INSECURE_REGISTRY: 'INSECURE_REGISTRY',
  UNEXPECTED_RESPONSE: 'REGISTRY_UNEXPECTED_RESPONSE',
} as const;
export type RegistryErrorCode = (typeof RegistryErrorCode)[keyof typeof RegistryErrorCode];

/** Every error this client throws; catch this to handle all registry failures at once. */
export abstract class OciRegistryError extends Error {
  public abstract readonly code: RegistryErrorCode;
}

/** 401/403 after the challenge was answered, or the token endpoint refused us. */
export class RegistryAuthError extends OciRegistryError {
  public readonly code = RegistryErrorCode.AUTH_FAILED;
  public constructor(public readonly registry: string, message: string, public readonly status?: number, options?: { cause?: unknown }) {
    super(`registry ${registry}: ${message}`, options);
    this.name = 'RegistryAuthError';
  }
}

export class ManifestNotFoundError extends OciRegistryError {
  public readonly code = RegistryErrorCode.MANIFEST_NOT_FOUND;
  public constructor(public readonly image: string, detail?: string, options?: { cause?: unknown }) {
    super(`manifest not found: ${image}${detail ? ` (${detail})` : ''}`, options);
    this.name = 'ManifestNotFoundError';
  }
}

export class BlobNotFoundError extends OciRegistryError {
  public readonly code = RegistryErrorCode.BLOB_NOT_FOUND;
  public constructor(public readonly image: string, public readonly digest: string, options?: { cause?: unknown }) {
    super(`blob ${digest} not found in ${image}`, options);
    this.name = 'BlobNotFoundError';
  }
}

export class PlatformNotFoundError extends OciRegistryError {
  public readonly code = RegistryErrorCode.PLATFORM_NOT_FOUND;
  public constructor(public readonly image: string, public readonly platform: string, public readonly available: readonly string[]) {
    super(`${image} has no ${platform} image (has: ${available.length > 0 ? available.join(', ') : 'none'})`);
    this.name = 'PlatformNotFoundError';
  }
}

/** Network failure, timeout, or 5xx after the retries ran out. */
export class RegistryUnavailableError extends OciRegistryError {
  public readonly code = RegistryErrorCode.UNAVAILABLE;
  public constructor(public readonly registry: string, message: string, public readonly status?: number, options?: { cause?: unknown }) {
    super(`registry ${registry} unavailable: ${message}`, options);
    this.name = 'RegistryUnavailableError';
  }
}

/** 429 after the retries ran out, or a Retry-After longer than we are allowed to wait (Docker Hub pull limits). */
export class RegistryRateLimitedError extends OciRegistryError {
  public readonly code = RegistryErrorCode.RATE_LIMITED;
  public constructor(public readonly registry: string, public readonly retryAfterMs: number | undefined, options?: { cause?: unknown }) {
    super(`registry ${registry} rate-limited us${retryAfterMs !== undefined ? `; retry after ${Math.ceil(retryAfterMs / 1000)} s` : ''}`, options);
    this.name = 'RegistryRateLimitedError';
  }
}

/** The bytes we got do not hash to the digest we asked for or were told. */
export class DigestMismatchError extends OciRegistryError {
  public readonly code = RegistryErrorCode.DIGEST_MISMATCH;
  public constructor(public readonly what: string, public readonly expected: string, public readonly actual: string) {
    super(`${what}: expected digest ${expected}, content hashes to ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

export class ResponseTooLargeError extends OciRegistryError {
  public readonly code = RegistryErrorCode.RESPONSE_TOO_LARGE;
  public constructor(public readonly what: string, public readonly limitBytes: number, public readonly receivedBytes?: number) {
    super(`${what}: response larger than the ${limitBytes} byte limit${receivedBytes !== undefined ? ` (${receivedBytes} bytes)` : ''}`);
    this.name = 'ResponseTooLargeError';
  }
}

export class InvalidManifestError extends OciRegistryError {
  public readonly code = RegistryErrorCode.INVALID_MANIFEST;
  public constructor(public readonly what: string, reason: string, options?: { cause?: unknown }) {
    super(`${what}: ${reason}`, options);
    this.name = 'InvalidManifestError';
  }
}

export class UnsupportedMediaTypeError extends OciRegistryError {
  public readonly code = RegistryErrorCode.UNSUPPORTED_MEDIA_TYPE;
  public constructor(public readonly what: string, public readonly mediaType: string) {
    super(`${what}: unsupported media type ${JSON.stringify(mediaType)}`);
    this.name = 'UnsupportedMediaTypeError';
  }
}

/** Plain http (or any non-https URL) outside loopback: refused so that tokens and digests cannot be tampered with. */
export class InsecureRegistryError extends OciRegistryError {
  public readonly code = RegistryErrorCode.INSECURE_REGISTRY;
  public constructor(public readonly url: string, what: string) {
    super(`${what} ${JSON.stringify(url)} refused: only https is allowed, except http on loopback`);
    this.name = 'InsecureRegistryError';
  }
}

export class UnexpectedRegistryResponseError extends OciRegistryError {
  public readonly code = RegistryErrorCode.UNEXPECTED_RESPONSE;
  public constructor(public readonly registry: string, public readonly status: number, detail: string) {
    super(`registry ${registry} answered HTTP ${status}: ${detail}`);
    this.name = 'UnexpectedRegistryResponseError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Options and results
// ---------------------------------------------------------------------------------------------------------------

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** Looked up per registry host as written in the image reference (`docker.io`, `quay.io`, `123….dkr.ecr….amazonaws.com`). */
export type CredentialsProvider = (registry: string) => RegistryCredentials | undefined | Promise<RegistryCredentials | undefined>;

export interface RetryOptions {
  /** Attempts in all, the first included. @default 3 */
  readonly maxAttempts?: number;
  /** First backoff; doubled on each retry. @default 200 */
  readonly baseDelayMs?: number;
  /** Longest single wait; a Retry-After above it is not waited for, the call fails at once. @default 10000 */
  readonly maxDelayMs?: number;
}

export interface OciRegistryClientOptions {
  /** Base URL per registry host (`{ 'docker.io': 'http://127.0.0.1:5000' }`); http only on loopback. @default https://<registry> */
  readonly endpoints?: Readonly<Record<string, string>>;
  /** Basic credentials per registry, used for Basic challenges and sent to the token realm. @default - anonymous */
  readonly credentials?: Readonly<Record<string, RegistryCredentials>> | CredentialsProvider;
  /** Per request attempt, body included. @default 10000 */
  readonly timeoutMs?: number;
  /** Manifests and indexes above this are refused. @default 4 MiB (the limit distribution itself enforces) */
  readonly maxManifestBytes?: number;
  /** Blobs read by getBlob/getImageConfig above this are refused; layers are not meant to be read here. @default 32 MiB */
  readonly maxBlobBytes?: number;
  readonly retry?: RetryOptions;
  /** @default patchline-oci-registry */
  readonly userAgent?: string;
  /** For tests. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Clock for token expiry, for tests. @default Date.now */
  readonly now?: () => number;
  /** Backoff sleep, for tests. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface ResolvedDigest {
  readonly digest: string;
  readonly mediaType: string;
}

export interface ManifestResult {
  readonly digest: string;
  readonly mediaType: string;
  /** The exact bytes the digest was computed from. */
  readonly bytes: Buffer;
  readonly manifest: ImageIndex | ImageManifest;
}

export interface PlatformSelector {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface GetImageConfigOptions {
  /** Image picked from an index; a single-platform image must match it when given. @default linux/amd64 for an index */
  readonly platform?: PlatformSelector | string;
}

export interface BaseImageInfo {
  readonly name?: string;
  readonly digest?: string;
  /** Where it was found: manifest annotation (or the index's descriptor annotation), else config label. */
  readonly source: 'annotation' | 'label';
}

export interface ImageConfigResult {
  /** The index the tag pointed at, when it pointed at one. */
  readonly indexDigest?: string;
  readonly manifestDigest: string;
  readonly manifestMediaType: string;
  readonly manifest: ImageManifest;
  readonly configDigest: string;
  readonly config: ImageConfig;
  /** Manifest annotations over the index descriptor's annotations for this manifest. */
  readonly annotations: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly baseImage?: BaseImageInfo;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers (pure; exported for the tests and for callers that parse challenges or platforms themselves)
// ---------------------------------------------------------------------------------------------------------------

export interface AuthChallenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="…",service="…",scope="repository:a:pull,push"` (quoted values may hold commas). */
export function parseWwwAuthenticate(header: string): AuthChallenge | undefined {
  const match = /^\s*([A-Za-z][A-Za-z0-9-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const paramPattern = /([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = match[2];
  let found: RegExpExecArray | null;
  while (paramPattern.lastIndex < rest.length && (found = paramPattern.exec(rest)) !== null) {
    params[found[1].toLowerCase()] = found[2] !== undefined ? found[2].replace(/\\(.)/g, '$1') : found[3];
  }
  return { scheme: match[1].toLowerCase(), params };
}

/** `linux/arm64/v8` → `{ os: 'linux', architecture: 'arm64', variant: 'v8' }`. */
export function parsePlatform(value: string): PlatformSelector {
  const [os, architecture, variant, extra] = value.split('/');
  if (!os || !architecture || extra !== undefined || variant === '') {
    throw new TypeError(`platform ${JSON.stringify(value)} must be os/architecture[/variant]`);
  }
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(platform: PlatformSelector): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** `sha256:<hex>` of the bytes, with the digest's own algorithm when one is given. */
export function digestOf(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** Registry-host → base URL: `docker.io` is served by registry-1.docker.io; loopback registries default to http as Docker does. */
export function defaultEndpoint(registry: string): string {
  if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
  const hostname = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.split(':')[0];
  return isLoopbackHost(hostname) ? `http://${registry}` : `https://${registry}`;
}

function assertSecureUrl(url: string, what: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InsecureRegistryError(url, `${what} (not a URL)`);
  }
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && isLoopbackHost(parsed.hostname)) return parsed;
  throw new InsecureRegistryError(url, what);
}

function platformMatches(platform: Platform | undefined, wanted: PlatformSelector): boolean {
  if (!platform || platform.os !== wanted.os || platform.architecture !== wanted.architecture) return false;
  if (wanted.variant === undefined) return true;
  // arm64's only variant is v8, which indexes often leave out.
  const normalize = (v: string | undefined): string | undefined => (platform.architecture === 'arm64' && v === undefined ? 'v8' : v);
  return normalize(platform.variant) === normalize(wanted.variant);
}

/** Retry-After is seconds or an HTTP date. */
function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function contentType(headers: Headers): string | undefined {
  const value = headers.get('content-type');
  return value ? value.split(';')[0].trim().toLowerCase() : undefined;
}

async function readBounded(response: Response, maxBytes: number, what: string): Promise<Buffer> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new ResponseTooLargeError(what, maxBytes, Number(declared));
  }
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(what, maxBytes);
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, total);
}

function errorDetail(body: Buffer): string {
  try {
    const parsed = RegistryErrorBodySchema.safeParse(JSON.parse(body.toString('utf8')));
    if (parsed.success) return parsed.data.errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
  } catch {
    // Not JSON: fall through to the raw text.
  }
  const text = body.toString('utf8').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text || '(empty body)';
}

// ---------------------------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------------------------

interface RawResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

interface RegistryRequest {
  readonly method: 'GET' | 'HEAD';
  /** Path after `/v2/`. */
  readonly path: string;
  readonly accept?: string;
  readonly maxBytes: number;
  readonly what: string;
}

interface CachedAuth {
  readonly header: string;
  readonly expiresAt: number;
}

interface BearerRealm {
  readonly realm: string;
  readonly service?: string;
}

const MAX_REDIRECTS = 5;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const ERROR_BODY_LIMIT = 64 * 1024;
const TOKEN_BODY_LIMIT = 1 * MIB;
/** The distribution spec's default and minimum token lifetime. */
const DEFAULT_TOKEN_TTL_S = 60;
const MAX_INDEX_DEPTH = 3;

export class OciRegistryClient {
  private readonly endpoints = new Map<string, URL>();
  private readonly timeoutMs: number;
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly userAgent: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly credentials?: CredentialsProvider;
  /** Keyed `registry \n scope`; a token is good for the scope it was issued for. */
  private readonly tokens = new Map<string, CachedAuth>();
  private readonly pendingTokens = new Map<string, Promise<CachedAuth>>();
  /** What each registry asked for, learned from its first challenge, so later scopes skip the 401 round trip. */
  private readonly realms = new Map<string, BearerRealm | 'basic'>();

  public constructor(options: OciRegistryClientOptions = {}) {
    for (const [registry, url] of Object.entries(options.endpoints ?? {})) {
      const parsed = assertSecureUrl(url, `endpoint for ${registry}`);
      this.endpoints.set(registry, new URL(parsed.href.replace(/\/+$/, '')));
    }
    this.timeoutMs = positive(options.timeoutMs, 10_000, 'timeoutMs');
    this.maxManifestBytes = positive(options.maxManifestBytes, 4 * MIB, 'maxManifestBytes');
    this.maxBlobBytes = positive(options.maxBlobBytes, 32 * MIB, 'maxBlobBytes');
    this.maxAttempts = positive(options.retry?.maxAttempts, 3, 'retry.maxAttempts');
    this.baseDelayMs = nonNegative(options.retry?.baseDelayMs, 200, 'retry.baseDelayMs');
    this.maxDelayMs = nonNegative(options.retry?.maxDelayMs, 10_000, 'retry.maxDelayMs');
    this.userAgent = options.userAgent ?? 'patchline-oci-registry';
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    const credentials = options.credentials;
    if (typeof credentials === 'function') this.credentials = credentials;
    else if (credentials) this.credentials = (registry) => credentials[registry];
  }

  /** The base URL requests for this registry go to. */
  public endpointFor(registry: string): string {
    return (this.endpoints.get(registry) ?? new URL(defaultEndpoint(registry))).href.replace(/\/+$/, '');
  }

  /** Tag (or digest) → manifest digest, by HEAD (free on Docker Hub's pull limit); GET and hash when HEAD gives no digest. */
  public async resolveDigest(ref: ImageRef): Promise<ResolvedDigest> {
    const what = formatImageRef(ref);
    const head = await this.request(ref, { method: 'HEAD', path: manifestPath(ref), accept: MANIFEST_ACCEPT, maxBytes: 0, what });
    this.assertManifestFound(head, ref, what);
    const digest = head.headers.get('docker-content-digest');
    const mediaType = contentType(head.headers);
    if (digest && isDigest(digest) && mediaType && mediaType !== 'application/octet-stream') {
      if (ref.digest && digest !== ref.digest) throw new DigestMismatchError(what, ref.digest, digest);
      return { digest, mediaType };
    }
    const manifest = await this.getManifest(ref);
    return { digest: manifest.digest, mediaType: manifest.mediaType };
  }

  /** The manifest or index the reference names, its bytes checked against the digest asked for or announced. */
  public async getManifest(ref: ImageRef): Promise<ManifestResult> {
    const what = formatImageRef(ref);
    const response = await this.request(ref, {
      method: 'GET',
      path: manifestPath(ref),
      accept: MANIFEST_ACCEPT,
      maxBytes: this.maxManifestBytes,
      what: `manifest ${what}`,
    });
    this.assertManifestFound(response, ref, what);
    const expected = ref.digest ?? response.headers.get('docker-content-digest') ?? undefined;
    const algorithm = expected?.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = digestOf(response.body, algorithm);
    if (expected !== undefined && expected !== digest) throw new DigestMismatchError(`manifest ${what}`, expected, digest);
    return this.parseManifest(response.body, digest, contentType(response.headers), `manifest ${what}`);
  }

  /** A blob (config, small layer) of the repository; its bytes must hash to `digest`. */
  public async getBlob(ref: ImageRef, digest: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    const what = formatImageRef(ref);
    if (!isDigest(digest)) throw new TypeError(`blob digest ${JSON.stringify(digest)} is not sha256:<hex> or sha512:<hex>`);
    const response = await this.request(ref, {
      method: 'GET',
      path: `${ref.repository}/blobs/${digest}`,
      maxBytes: options.maxBytes ?? this.maxBlobBytes,
      what: `blob ${digest} of ${what}`,
    });
    if (response.status === 404) throw new BlobNotFoundError(what, digest);
    this.assertOk(response, ref);
    const actual = digestOf(response.body, digest.startsWith('sha512:') ? 'sha512' : 'sha256');
    if (actual !== digest) throw new DigestMismatchError(`blob of ${what}`, digest, actual);
    return response.body;
  }

  /** The image config for a platform, following an index to the platform's manifest. */
  public async getImageConfig(ref: ImageRef, options: GetImageConfigOptions = {}): Promise<ImageConfigResult> {
    const what = formatImageRef(ref);
    const requested = typeof options.platform === 'string' ? parsePlatform(options.platform) : options.platform;
    const wanted = requested ?? { os: 'linux', architecture: 'amd64' };
    let current = await this.getManifest(ref);
    let indexDigest: string | undefined;
    let descriptorAnnotations: Record<string, string> = {};
    for (let depth = 0; isIndex(current.manifest); depth += 1) {
      if (depth >= MAX_INDEX_DEPTH) throw new InvalidManifestError(`manifest ${what}`, `indexes nested deeper than ${MAX_INDEX_DEPTH}`);
      indexDigest ??= current.digest;
      const index: ImageIndex = current.manifest;
      const chosen = index.manifests.find((d) => platformMatches(d.platform, wanted));
      if (!chosen) {
        const available = index.manifests.filter((d) => d.platform !== undefined).map((d) => formatPlatform(d.platform!));
        throw new PlatformNotFoundError(what, formatPlatform(wanted), available);
      }
      descriptorAnnotations = { ...(index.annotations ?? {}), ...(chosen.annotations ?? {}) };
      current = await this.getManifest({ ...ref, tag: undefined, digest: chosen.digest });
    }
    const manifest = current.manifest as ImageManifest;
    const configBytes = await this.getBlob(ref, manifest.config.digest);
    const config = parseJson(ImageConfigSchema, configBytes, `config ${manifest.config.digest} of ${what}`);
    if (requested && !platformMatches(config, requested)) {
      throw new PlatformNotFoundError(what, formatPlatform(requested), [formatPlatform(config)]);
    }
    const annotations = { ...descriptorAnnotations, ...(manifest.annotations ?? {}) };
    const labels = config.config?.Labels ?? {};
    return {
      indexDigest,
      manifestDigest: current.digest,
      manifestMediaType: current.mediaType,
      manifest,
      configDigest: manifest.config.digest,
      config,
      annotations,
      labels,
      baseImage: baseImageFrom(annotations, labels),
    };
  }

  // -- internals ------------------------------------------------------------------------------------------------

  private parseManifest(bytes: Buffer, digest: string, headerType: string | undefined, what: string): ManifestResult {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch (cause) {
      throw new InvalidManifestError(what, 'not JSON', { cause });
    }
    const declared = typeof json === 'object' && json !== null ? (json as { mediaType?: unknown }).mediaType : undefined;
    // OCI manifests may omit mediaType; the shape then tells an index from an image.
    const shaped = typeof json === 'object' && json !== null && 'manifests' in json ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST;
    const mediaType =
      typeof declared === 'string' ? declared : headerType && headerType !== 'application/octet-stream' && headerType !== 'application/json' ? headerType : shaped;
    if (INDEX_MEDIA_TYPES.includes(mediaType)) {
      return { digest, mediaType, bytes, manifest: parseJsonValue(ImageIndexSchema, json, what) };
    }
    if (IMAGE_MEDIA_TYPES.includes(mediaType)) {
      return { digest, mediaType, bytes, manifest: parseJsonValue(ImageManifestSchema, json, what) };
    }
    throw new UnsupportedMediaTypeError(what, mediaType);
  }

  private assertManifestFound(response: RawResponse, ref: ImageRef, what: string): void {
    if (response.status === 404) throw new ManifestNotFoundError(what, response.body.length > 0 ? errorDetail(response.body) : undefined);
    this.assertOk(response, ref);
  }

  private assertOk(response: RawResponse, ref: ImageRef): void {
    if (response.status >= 200 && response.status < 300) return;
    const detail = response.body.length > 0 ? errorDetail(response.body) : '(no body)';
    if (response.status === 401 || response.status === 403) {
      throw new RegistryAuthError(ref.registry, `access to ${ref.repository} denied (HTTP ${response.status}): ${detail}`, response.status);
    }
    throw new UnexpectedRegistryResponseError(ref.registry, response.status, detail);
  }

  /** One registry call: auth (cached token, or answer the challenge once), redirects, retries. */
  private async request(ref: ImageRef, request: RegistryRequest): Promise<RawResponse> {
    const base = this.endpointFor(ref.registry);
    const url = `${base}/v2/${request.path}`;
    const scope = `repository:${ref.repository}:pull`;
    let authorization = await this.cachedOrProactiveAuth(ref.registry, scope);
    for (let challenged = false; ; challenged = true) {
      const response = await this.withRetries(ref.registry, request, (signal) => {
        const headers: Record<string, string> = { 'user-agent': this.userAgent };
        if (request.accept) headers.accept = request.accept;
        if (authorization) headers.authorization = authorization;
        return this.fetchFollowingRedirects(url, request.method, headers, signal);
      });
      if (response.status !== 401 || challenged) return response;
      this.tokens.delete(tokenKey(ref.registry, scope));
      const header = response.headers.get('www-authenticate');
      const challenge = header ? parseWwwAuthenticate(header) : undefined;
      if (!challenge) return response;
      authorization = await this.answerChallenge(ref.registry, scope, challenge);
    }
  }

  private async cachedOrProactiveAuth(registry: string, scope: string): Promise<string | undefined> {
    const cached = this.tokens.get(tokenKey(registry, scope));
    if (cached && cached.expiresAt > this.now()) return cached.header;
    const known = this.realms.get(registry);
    if (known === 'basic') return this.basicHeader(registry);
    if (known) return (await this.fetchToken(registry, scope, known, [scope])).header;
    return undefined;
  }

  private async answerChallenge(registry: string, scope: string, challenge: AuthChallenge): Promise<string | undefined> {
    if (challenge.scheme === 'basic') {
      const header = await this.basicHeader(registry);
      if (!header) throw new RegistryAuthError(registry, 'asks for basic credentials and none are configured', 401);
      this.realms.set(registry, 'basic');
      return header;
    }
    if (challenge.scheme !== 'bearer') throw new RegistryAuthError(registry, `unsupported auth scheme ${JSON.stringify(challenge.scheme)}`, 401);
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryAuthError(registry, 'Bearer challenge without realm', 401);
    assertSecureUrl(realm, `token realm of ${registry}`);
    const bearer: BearerRealm = { realm, service: challenge.params.service };
    this.realms.set(registry, bearer);
    // The registry names the scope it wants; ours is the fallback (e.g. the /v2/ ping has none).
    const scopes = challenge.params.scope ? challenge.params.scope.split(' ').filter(Boolean) : [scope];
    return (await this.fetchToken(registry, scope, bearer, scopes)).header;
  }

  private async basicHeader(registry: string): Promise<string | undefined> {
    const credentials = await this.credentials?.(registry);
    return credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
  }

  /** Concurrent callers for the same scope share one token request. */
  private fetchToken(registry: string, scope: string, bearer: BearerRealm, scopes: readonly string[]): Promise<CachedAuth> {
    const key = tokenKey(registry, scope);
    const pending = this.pendingTokens.get(key);
    if (pending) return pending;
    const promise = this.requestToken(registry, bearer, scopes).finally(() => this.pendingTokens.delete(key));
    this.pendingTokens.set(key, promise);
    return promise.then((auth) => {
      this.tokens.set(key, auth);
      return auth;
    });
  }

  private async requestToken(registry: string, bearer: BearerRealm, scopes: readonly string[]): Promise<CachedAuth> {
    const url = new URL(bearer.realm);
    if (bearer.service) url.searchParams.set('service', bearer.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    const basic = await this.basicHeader(registry);
    if (basic) headers.authorization = basic;
    const what = `token for ${registry}`;
    const response = await this.withRetries(registry, { method: 'GET', path: '', maxBytes: TOKEN_BODY_LIMIT, what }, (signal) =>
      this.fetchFollowingRedirects(url.href, 'GET', headers, signal),
    );
    if (response.status !== 200) {
      throw new RegistryAuthError(registry, `token endpoint ${url.origin}${url.pathname} answered HTTP ${response.status}: ${errorDetail(response.body)}`, response.status);
    }
    let token: z.infer<typeof TokenResponseSchema>;
    try {
      token = TokenResponseSchema.parse(JSON.parse(response.body.toString('utf8')));
    } catch (cause) {
      throw new RegistryAuthError(registry, 'token endpoint returned no usable token', response.status, { cause });
    }
    const ttlMs = Math.max(token.expires_in ?? DEFAULT_TOKEN_TTL_S, DEFAULT_TOKEN_TTL_S) * 1000;
    // Renew a little early so a token does not expire between our check and the registry's.
    const expiresAt = this.now() + ttlMs - Math.min(10_000, ttlMs / 10);
    return { header: `Bearer ${token.token ?? token.access_token}`, expiresAt };
  }

  /** Retries network errors, timeouts, 429 and 5xx with exponential backoff, honouring Retry-After up to maxDelayMs. */
  private async withRetries(
    registry: string,
    request: RegistryRequest,
    send: (signal: AbortSignal) => Promise<Response>,
  ): Promise<RawResponse> {
    for (let attempt = 1; ; attempt += 1) {
      const last = attempt >= this.maxAttempts;
      let result: RawResponse;
      try {
        const signal = AbortSignal.timeout(this.timeoutMs);
        const response = await send(signal);
        const ok = response.status >= 200 && response.status < 300;
        const limit = request.method === 'HEAD' ? 0 : ok ? request.maxBytes : ERROR_BODY_LIMIT;
        const body = request.method === 'HEAD' ? Buffer.alloc(0) : await readBounded(response, limit, request.what).catch((error: unknown) => {
          // An oversized error body is not worth failing over; its status says enough.
          if (error instanceof ResponseTooLargeError && !ok) return Buffer.alloc(0);
          throw error;
        });
        result = { status: response.status, headers: response.headers, body };
      } catch (error) {
        if (error instanceof OciRegistryError) throw error;
        const reason = describeFetchError(error, this.timeoutMs);
        if (last) throw new RegistryUnavailableError(registry, `${reason} (after ${attempt} attempt${attempt > 1 ? 's' : ''})`, undefined, { cause: error });
        await this.sleep(this.backoff(attempt));
        continue;
      }
      if (!RETRYABLE_STATUS.has(result.status)) return result;
      const retryAfterMs = parseRetryAfter(result.headers.get('retry-after'), this.now());
      const tooLong = retryAfterMs !== undefined && retryAfterMs > this.maxDelayMs;
      if (last || tooLong) {
        if (result.status === 429) throw new RegistryRateLimitedError(registry, retryAfterMs);
        throw new RegistryUnavailableError(registry, `HTTP ${result.status} after ${attempt} attempt${attempt > 1 ? 's' : ''}: ${errorDetail(result.body)}`, result.status);
      }
      await this.sleep(retryAfterMs ?? this.backoff(attempt));
    }
  }

  private backoff(attempt: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
  }

  /** Redirects are followed by hand so credentials never go to another origin (blob CDNs, S3) and http stays on loopback. */
  private async fetchFollowingRedirects(
    url: string,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<Response> {
    let current = assertSecureUrl(url, 'registry URL');
    const origin = current.origin;
    for (let hop = 0; ; hop += 1) {
      const sent = current.origin === origin ? headers : withoutAuthorization(headers);
      const response = await this.fetchImpl(current.href, { method, headers: sent, redirect: 'manual', signal });
      const location = response.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
      await response.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new RegistryUnavailableError(current.host, `more than ${MAX_REDIRECTS} redirects`);
      current = assertSecureUrl(new URL(location, current).href, 'redirect target');
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------

function manifestPath(ref: ImageRef): string {
  return `${ref.repository}/manifests/${ref.digest ?? ref.tag ?? 'latest'}`;
}

function tokenKey(registry: string, scope: string): string {
  return `${registry}\n${scope}`;
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const { authorization: _dropped, ...rest } = headers;
  return rest;
}

function isIndex(manifest: ImageIndex | ImageManifest): manifest is ImageIndex {
  return 'manifests' in manifest;
}

function baseImageFrom(annotations: Record<string, string>, labels: Record<string, string>): BaseImageInfo | undefined {
  for (const [source, values] of [['annotation', annotations], ['label', labels]] as const) {
    const name = values[BASE_NAME_ANNOTATION];
    const digest = values[BASE_DIGEST_ANNOTATION];
    if (name !== undefined || digest !== undefined) return { name, digest, source };
  }
  return undefined;
}

function parseJson<T>(schema: z.ZodType<T>, bytes: Buffer, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    throw new InvalidManifestError(what, 'not JSON', { cause });
  }
  return parseJsonValue(schema, json, what);
}

function parseJsonValue<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new InvalidManifestError(what, z.prettifyError(parsed.error), { cause: parsed.error });
  return parsed.data;
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  // Duck-typed: DOMException and errors from another realm (jest's VM) fail instanceof Error.
  const { name, message, cause } = (typeof error === 'object' && error !== null ? error : {}) as { name?: unknown; message?: unknown; cause?: unknown };
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const causeMessage = typeof cause === 'object' && cause !== null ? (cause as { message?: unknown }).message : undefined;
  return `${typeof message === 'string' ? message : String(error)}${typeof causeMessage === 'string' ? `: ${causeMessage}` : ''}`;
}

function positive(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${field} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`${field} must be zero or more, got ${value}`);
  return value;
}
