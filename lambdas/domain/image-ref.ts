/**
 * Container image references, parsed strictly after the grammar of distribution/reference:
 *   reference := name [ ":" tag ] [ "@" digest ]
 * Docker Hub short names are normalized (`python:3.11` = `docker.io/library/python:3.11`).
 */

export const DOCKER_HUB = 'docker.io';

/** ECR and OCI limits: repository path components, tags and digests. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const MAX_NAME_LENGTH = 255;

export interface ImageRef {
  /** Registry host, with port when given (`docker.io`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/python`, `enterprise/python-311`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export class InvalidImageReferenceError extends Error {
  public readonly code = 'INVALID_IMAGE_REFERENCE';
  public constructor(public readonly reference: string, reason: string, options?: { cause?: unknown }) {
    super(`invalid image reference ${JSON.stringify(truncate(reference))}: ${reason}`, options);
    this.name = 'InvalidImageReferenceError';
  }
}

function truncate(value: string): string {
  return value.length > 120 ? `${value.slice(0, 120)}…(${value.length} chars)` : value;
}

/** True when the first path element names a registry host rather than a Docker Hub namespace. */
function isDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

export interface ParseImageRefOptions {
  /** Registry assumed when the reference names none. @default docker.io (Docker's own rule) */
  readonly defaultRegistry?: string;
}

export function parseImageRef(reference: string, options: ParseImageRefOptions = {}): ImageRef {
  if (typeof reference !== 'string' || reference.length === 0) {
    throw new InvalidImageReferenceError(String(reference), 'empty');
  }
  if (reference.length > 512) throw new InvalidImageReferenceError(reference, 'longer than 512 characters');
  if (/\s/.test(reference)) throw new InvalidImageReferenceError(reference, 'contains whitespace');

  let rest = reference;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new InvalidImageReferenceError(reference, `digest ${JSON.stringify(truncate(digest))} is not sha256:<64 hex> or sha512:<128 hex>`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw new InvalidImageReferenceError(reference, `tag ${JSON.stringify(truncate(tag))} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    }
  }
  const parts = rest.split('/');
  let registry = options.defaultRegistry ?? DOCKER_HUB;
  if (parts.length > 1 && isDomain(parts[0])) {
    registry = parts.shift()!;
    const [host, port] = registry.split(':');
    if (!host.split('.').every((c) => DOMAIN_COMPONENT.test(c)) || (port !== undefined && !/^\d{1,5}$/.test(port))) {
      throw new InvalidImageReferenceError(reference, `registry ${JSON.stringify(registry)} is not a valid host[:port]`);
    }
    registry = registry.toLowerCase();
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  for (const component of parts) {
    if (!PATH_COMPONENT.test(component)) {
      throw new InvalidImageReferenceError(
        reference,
        `repository component ${JSON.stringify(truncate(component))} must be lowercase letters and digits separated by '.', '_', '__' or '-'`,
      );
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME_LENGTH) {
    throw new InvalidImageReferenceError(reference, `repository longer than ${MAX_NAME_LENGTH} characters`);
  }
  return { registry, repository, tag, digest };
}

/** `docker.io/library/python:3.11` → `python:3.11`, as `docker` prints it. */
export function familiarName(ref: ImageRef): string {
  if (ref.registry === DOCKER_HUB) {
    return ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
  }
  return `${ref.registry}/${ref.repository}`;
}

/** Familiar name with tag (`:latest` when neither tag nor digest is given) and digest. */
export function formatImageRef(ref: ImageRef): string {
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  return `${familiarName(ref)}${tag ? `:${tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Fully qualified form: `docker.io/library/python:3.11`. */
export function canonicalImageRef(ref: ImageRef): string {
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  return `${ref.registry}/${ref.repository}${tag ? `:${tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

export function isTag(value: string): boolean {
  return TAG.test(value);
}

/** An ECR repository name: path components joined by '/', 2–256 characters (ECR's CreateRepository rule). */
export function isRepositoryName(value: string): boolean {
  if (typeof value !== 'string' || value.length < 2 || value.length > 256) return false;
  return value.split('/').every((c) => PATH_COMPONENT.test(c));
}
