import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BASE_DIGEST_ANNOTATION,
  BASE_NAME_ANNOTATION,
  BlobNotFoundError,
  DigestMismatchError,
  ImageIndex,
  ImageManifest,
  InsecureRegistryError,
  ManifestNotFoundError,
  MediaType,
  OciRegistryClient,
  OciRegistryClientOptions,
  parsePlatform,
  parseWwwAuthenticate,
  PlatformNotFoundError,
  RegistryAuthError,
  RegistryRateLimitedError,
  RegistryUnavailableError,
  ResponseTooLargeError,
} from '../../lambdas/aws/oci-registry';
import { canonicalImageRef, ImageRef, parseImageRef } from '../../lambdas/domain/image-ref';
import {
  ensureRegistryBinary,
  PushedImage,
  pushImage,
  pushIndex,
  RegistryProxy,
  RegistryProxyOptions,
  RunningRegistry,
  sha256Digest,
  startRegistry,
  startRegistryProxy,
} from '../support/registry-process';

const DATA = join(__dirname, '../../../shared/data');

/** A real lineage edge (child tag → final-stage base) from the Docker Official Images graph. */
const [CHILD, PARENT] = readFileSync(join(DATA, 'lineage/official-images-edges.tsv'), 'utf8')
  .split('\n')
  .find((line) => line.includes('\t'))!
  .split('\t');
const DOCKERFILE = readFileSync(join(DATA, 'dockerfiles/nginx+docker-nginx__modules__Dockerfile.alpine.Dockerfile'), 'utf8');

const registryBinary = ensureRegistryBinary();
if (!registryBinary.available) {
  console.warn(`Skipping the OCI registry integration tests: ${registryBinary.reason}`);
}
// In CI the binary is installed by .ci/install-test-deps; a missing one there must fail, not skip.
const describeWithRegistry = registryBinary.available || process.env.CI ? describe : describe.skip;

describe('Function: parseWwwAuthenticate', () => {
  it('reads a Bearer challenge whose quoted scope holds commas', () => {
    const challenge = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/php:pull,push"',
    );
    expect(challenge).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/php:pull,push' },
    });
  });

  it('reads a Basic challenge (ECR) and unquoted values', () => {
    expect(parseWwwAuthenticate('Basic realm="https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/",service=ecr.amazonaws.com')).toEqual({
      scheme: 'basic',
      params: { realm: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/', service: 'ecr.amazonaws.com' },
    });
  });
});

describe('Function: parsePlatform', () => {
  it('splits os/architecture/variant', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('refuses a platform without an architecture', () => {
    expect(() => parsePlatform('linux')).toThrow(TypeError);
  });
});

describe('Class: OciRegistryClient', () => {
  describe('Method: endpointFor', () => {
    it('sends docker.io to registry-1.docker.io over https', () => {
      const client = new OciRegistryClient();
      expect(client.endpointFor(parseImageRef(PARENT).registry)).toBe('https://registry-1.docker.io');
      expect(client.endpointFor('quay.io')).toBe('https://quay.io');
      expect(client.endpointFor('registry.access.redhat.com')).toBe('https://registry.access.redhat.com');
      expect(client.endpointFor('127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    });

    it('uses the base URL override for a registry', () => {
      const client = new OciRegistryClient({ endpoints: { 'docker.io': 'https://mirror.example.com/' } });
      expect(client.endpointFor('docker.io')).toBe('https://mirror.example.com');
    });

    it('refuses a plain http endpoint outside loopback', () => {
      expect(() => new OciRegistryClient({ endpoints: { 'quay.io': 'http://quay.io' } })).toThrow(InsecureRegistryError);
      expect(() => new OciRegistryClient({ endpoints: { 'quay.io': 'http://10.0.0.1:5000' } })).toThrow(/only https is allowed/);
    });
  });

  describeWithRegistry('against a real docker-registry on loopback', () => {
    let registry: RunningRegistry;
    let parent: PushedImage;
    let child: PushedImage;
    let amd64: PushedImage;
    let arm64: PushedImage;
    let indexDigest: string;
    const proxies: RegistryProxy[] = [];

    const childRepo = `library/${CHILD.split(':')[0]}`;
    const childTag = CHILD.split(':')[1];
    const parentRef = parseImageRef(PARENT);

    const ref = (host: string, name: string): ImageRef => parseImageRef(`${host}/${name}`);
    const client = (options: OciRegistryClientOptions = {}): OciRegistryClient =>
      new OciRegistryClient({ timeoutMs: 5000, retry: { baseDelayMs: 1 }, ...options });
    const proxy = async (options: RegistryProxyOptions): Promise<RegistryProxy> => {
      const started = await startRegistryProxy(registry.url, options);
      proxies.push(started);
      return started;
    };

    beforeAll(async () => {
      registry = await startRegistry();
      parent = await pushImage(registry.url, parentRef.repository, parentRef.tag, { layers: [{ 'etc/os-release': 'ID=alpine\n' }] });
      child = await pushImage(registry.url, childRepo, childTag, {
        layers: [{ 'etc/os-release': 'ID=alpine\n' }, { Dockerfile: DOCKERFILE }],
        annotations: { [BASE_NAME_ANNOTATION]: canonicalImageRef(parentRef), [BASE_DIGEST_ANNOTATION]: parent.digest },
      });
      amd64 = await pushImage(registry.url, 'enterprise/base', undefined, { platform: { os: 'linux', architecture: 'amd64' } });
      arm64 = await pushImage(registry.url, 'enterprise/base', undefined, {
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        layers: [{ 'etc/arch': 'arm64\n' }],
      });
      indexDigest = (await pushIndex(registry.url, 'enterprise/base', '1.0', [amd64, arm64], { annotations: { 'org.opencontainers.image.version': '1.0' } }))
        .digest;
    });

    afterEach(async () => {
      await Promise.all(proxies.splice(0).map((p) => p.stop()));
    });

    afterAll(async () => {
      await registry?.stop();
    });

    describe('Method: resolveDigest', () => {
      it('resolves a tag to exactly the digest the push returned, with one HEAD', async () => {
        const front = await proxy({});
        const resolved = await client().resolveDigest(ref(front.host, `${childRepo}:${childTag}`));
        expect(resolved).toEqual({ digest: child.digest, mediaType: MediaType.OCI_MANIFEST });
        expect(front.requests.map((r) => r.method)).toEqual(['HEAD']);
      });

      it('resolves docker.io references through a base URL override', async () => {
        const resolved = await client({ endpoints: { 'docker.io': registry.url } }).resolveDigest(parentRef);
        expect(resolved.digest).toBe(parent.digest);
      });

      it('follows a tag that moved to a new image', async () => {
        const first = await pushImage(registry.url, 'team/moving', 'stable', { layers: [{ 'app/version': '1\n' }] });
        const c = client();
        const target = ref(registry.host, 'team/moving:stable');
        expect((await c.resolveDigest(target)).digest).toBe(first.digest);
        const second = await pushImage(registry.url, 'team/moving', 'stable', { layers: [{ 'app/version': '2\n' }] });
        expect(second.digest).not.toBe(first.digest);
        expect((await c.resolveDigest(target)).digest).toBe(second.digest);
      });

      it('resolves an index tag to the index digest and media type', async () => {
        expect(await client().resolveDigest(ref(registry.host, 'enterprise/base:1.0'))).toEqual({ digest: indexDigest, mediaType: MediaType.OCI_INDEX });
      });

      it('falls back to GET and hashes the body when HEAD carries no Docker-Content-Digest', async () => {
        const front = await proxy({ stripHeaders: ['docker-content-digest'] });
        const resolved = await client().resolveDigest(ref(front.host, `${childRepo}:${childTag}`));
        expect(resolved.digest).toBe(child.digest);
        expect(front.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
      });

      it('fails with ManifestNotFoundError for a missing tag', async () => {
        const error = await client().resolveDigest(ref(registry.host, `${childRepo}:no-such-tag`)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ManifestNotFoundError);
        expect(error).toMatchObject({ code: 'MANIFEST_NOT_FOUND', image: `${registry.host}/${childRepo}:no-such-tag` });
      });

      it('fails with ManifestNotFoundError for a missing repository', async () => {
        await expect(client().resolveDigest(ref(registry.host, 'nobody/here:1'))).rejects.toThrow(ManifestNotFoundError);
      });
    });

    describe('Method: getManifest', () => {
      it('returns the pushed bytes, parsed, by tag and by digest', async () => {
        const c = client();
        const byTag = await c.getManifest(ref(registry.host, `${childRepo}:${childTag}`));
        expect(byTag.digest).toBe(child.digest);
        expect(byTag.bytes.equals(child.manifest)).toBe(true);
        const manifest = byTag.manifest as ImageManifest;
        expect(manifest.config.digest).toBe(child.configDigest);
        expect(manifest.layers.map((l) => l.digest)).toEqual(child.layerDigests);
        const byDigest = await c.getManifest(ref(registry.host, `${childRepo}@${child.digest}`));
        expect(byDigest.bytes.equals(child.manifest)).toBe(true);
      });

      it('reads Docker manifest lists and v2 manifests', async () => {
        const image = await pushImage(registry.url, 'vendor/cots', undefined, { format: 'docker', labels: { vendor: 'acme' } });
        const list = await pushIndex(registry.url, 'vendor/cots', '7.2', [image], { format: 'docker' });
        const c = client();
        const top = await c.getManifest(ref(registry.host, 'vendor/cots:7.2'));
        expect(top.mediaType).toBe(MediaType.DOCKER_MANIFEST_LIST);
        expect((top.manifest as ImageIndex).manifests[0].digest).toBe(image.digest);
        const config = await c.getImageConfig(ref(registry.host, 'vendor/cots:7.2'));
        expect(config).toMatchObject({ indexDigest: list.digest, manifestDigest: image.digest, manifestMediaType: MediaType.DOCKER_MANIFEST });
        expect(config.labels).toEqual({ vendor: 'acme' });
      });

      it('refuses a manifest whose bytes were altered on the way', async () => {
        const front = await proxy({
          tamper: (request, body) => (request.path.includes('/manifests/') ? Buffer.from(body.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2')) : undefined),
        });
        const error = await client().getManifest(ref(front.host, `${childRepo}:${childTag}`)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DigestMismatchError);
        expect(error).toMatchObject({ code: 'DIGEST_MISMATCH', expected: child.digest });
        await expect(client().getManifest(ref(front.host, `${childRepo}@${child.digest}`))).rejects.toThrow(DigestMismatchError);
      });

      it('refuses a manifest larger than maxManifestBytes', async () => {
        const error = await client({ maxManifestBytes: child.manifest.length - 1 })
          .getManifest(ref(registry.host, `${childRepo}:${childTag}`))
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ResponseTooLargeError);
        expect(error).toMatchObject({ code: 'RESPONSE_TOO_LARGE', limitBytes: child.manifest.length - 1 });
      });
    });

    describe('Method: getBlob', () => {
      it('returns a blob whose bytes match its digest', async () => {
        const blob = await client().getBlob(ref(registry.host, `${childRepo}:${childTag}`), child.configDigest);
        expect(blob.equals(child.config)).toBe(true);
      });

      it('refuses a blob whose bytes were altered on the way', async () => {
        const front = await proxy({
          tamper: (request, body) => (request.path.includes('/blobs/') ? Buffer.from(body.toString('utf8').replace('amd64', 'arm64')) : undefined),
        });
        const target = ref(front.host, `${childRepo}:${childTag}`);
        await expect(client().getBlob(target, child.configDigest)).rejects.toThrow(DigestMismatchError);
        await expect(client().getImageConfig(target)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH', expected: child.configDigest });
      });

      it('fails with BlobNotFoundError for an unknown digest', async () => {
        const missing = sha256Digest(Buffer.from('never pushed'));
        await expect(client().getBlob(ref(registry.host, `${childRepo}:${childTag}`), missing)).rejects.toMatchObject({
          name: 'BlobNotFoundError',
          code: 'BLOB_NOT_FOUND',
          digest: missing,
        });
        await expect(client().getBlob(ref(registry.host, `${childRepo}:${childTag}`), missing)).rejects.toThrow(BlobNotFoundError);
      });

      it('refuses a blob larger than maxBytes', async () => {
        await expect(
          client().getBlob(ref(registry.host, `${childRepo}:${childTag}`), child.configDigest, { maxBytes: child.config.length - 1 }),
        ).rejects.toThrow(ResponseTooLargeError);
      });
    });

    describe('Method: getImageConfig', () => {
      it('follows an index to each platform’s manifest and config', async () => {
        const c = client();
        const target = ref(registry.host, 'enterprise/base:1.0');
        const x86 = await c.getImageConfig(target);
        expect(x86).toMatchObject({ indexDigest, manifestDigest: amd64.digest, configDigest: amd64.configDigest });
        expect(x86.config.architecture).toBe('amd64');
        const arm = await c.getImageConfig(target, { platform: 'linux/arm64' });
        expect(arm).toMatchObject({ indexDigest, manifestDigest: arm64.digest, configDigest: arm64.configDigest });
        expect(arm.config).toMatchObject({ architecture: 'arm64', variant: 'v8' });
        expect(arm.annotations).toEqual({ 'org.opencontainers.image.version': '1.0' });
      });

      it('reads the base-image annotations of a real lineage edge', async () => {
        const result = await client().getImageConfig(ref(registry.host, `${childRepo}:${childTag}`));
        expect(result.indexDigest).toBeUndefined();
        expect(result.manifestDigest).toBe(child.digest);
        expect(result.baseImage).toEqual({ name: `docker.io/${parentRef.repository}:${parentRef.tag}`, digest: parent.digest, source: 'annotation' });
        expect(result.config.rootfs?.diff_ids).toHaveLength(2);
      });

      it('falls back to config labels for the base image', async () => {
        await pushImage(registry.url, 'team/labelled', 'v1', {
          labels: { [BASE_NAME_ANNOTATION]: canonicalImageRef(parentRef), [BASE_DIGEST_ANNOTATION]: parent.digest },
        });
        const result = await client().getImageConfig(ref(registry.host, 'team/labelled:v1'));
        expect(result.baseImage).toEqual({ name: canonicalImageRef(parentRef), digest: parent.digest, source: 'label' });
      });

      it('fails with PlatformNotFoundError for a platform the index lacks, naming those it has', async () => {
        const error = await client()
          .getImageConfig(ref(registry.host, 'enterprise/base:1.0'), { platform: { os: 'linux', architecture: 's390x' } })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PlatformNotFoundError);
        expect(error).toMatchObject({ code: 'PLATFORM_NOT_FOUND', platform: 'linux/s390x', available: ['linux/amd64', 'linux/arm64/v8'] });
      });

      it('refuses a single-platform image of another platform than asked', async () => {
        await expect(client().getImageConfig(ref(registry.host, `${childRepo}:${childTag}`), { platform: 'linux/arm64' })).rejects.toThrow(
          PlatformNotFoundError,
        );
      });
    });

    describe('Authentication', () => {
      it('answers a Bearer challenge with a token for the repository scope and reuses it', async () => {
        const front = await proxy({ auth: { scheme: 'bearer', service: 'test-registry' } });
        const c = client();
        const target = ref(front.host, `${childRepo}:${childTag}`);
        expect((await c.resolveDigest(target)).digest).toBe(child.digest);
        await c.getImageConfig(target);
        await c.resolveDigest(target);
        expect(front.tokenRequests).toEqual([{ service: 'test-registry', scopes: [`repository:${childRepo}:pull`] }]);
        // One 401 to learn the realm; every later request carries the cached token.
        expect(front.requests.map((r) => r.status)).toEqual([401, 200, 200, 200, 200]);
        expect(front.requests.slice(1).every((r) => r.authScheme === 'Bearer')).toBe(true);
      });

      it('asks for a new scope’s token without another 401 once the realm is known', async () => {
        const front = await proxy({ auth: { scheme: 'bearer' } });
        const c = client();
        await c.resolveDigest(ref(front.host, `${childRepo}:${childTag}`));
        await c.resolveDigest(ref(front.host, 'enterprise/base:1.0'));
        expect(front.tokenRequests.map((t) => t.scopes)).toEqual([[`repository:${childRepo}:pull`], ['repository:enterprise/base:pull']]);
        expect(front.requests.map((r) => r.status)).toEqual([401, 200, 200]);
      });

      it('fetches a new token once the cached one expires', async () => {
        const front = await proxy({ auth: { scheme: 'bearer', expiresInSeconds: 120 } });
        let now = Date.now();
        const c = client({ now: () => now });
        const target = ref(front.host, `${childRepo}:${childTag}`);
        await c.resolveDigest(target);
        now += 100_000;
        await c.resolveDigest(target);
        expect(front.tokenRequests).toHaveLength(1);
        now += 20_001;
        await c.resolveDigest(target);
        expect(front.tokenRequests).toHaveLength(2);
      });

      it('sends basic credentials to the token realm of a private repository', async () => {
        const credentials = { username: 'robot', password: 's3cret' };
        const front = await proxy({ auth: { scheme: 'bearer', credentials } });
        const target = ref(front.host, `${childRepo}:${childTag}`);
        const resolved = await client({ credentials: { [front.host]: credentials } }).resolveDigest(target);
        expect(resolved.digest).toBe(child.digest);
        const error = await client().resolveDigest(target).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RegistryAuthError);
        expect(error).toMatchObject({ code: 'REGISTRY_AUTH_FAILED', status: 401 });
      });

      it('answers a Basic challenge with configured credentials (as ECR asks)', async () => {
        const credentials = { username: 'AWS', password: 'token-from-GetAuthorizationToken' };
        const front = await proxy({ auth: { scheme: 'basic', credentials } });
        const target = ref(front.host, `${childRepo}:${childTag}`);
        const c = client({ credentials: () => credentials });
        expect((await c.getImageConfig(target)).manifestDigest).toBe(child.digest);
        expect(front.requests.filter((r) => r.status === 401)).toHaveLength(1);
      });

      it('fails with RegistryAuthError on a Basic challenge without credentials', async () => {
        const front = await proxy({ auth: { scheme: 'basic', credentials: { username: 'AWS', password: 'x' } } });
        await expect(client().resolveDigest(ref(front.host, `${childRepo}:${childTag}`))).rejects.toThrow(RegistryAuthError);
      });

      it('refuses a plain http token realm outside loopback without calling it', async () => {
        const front = await proxy({ auth: { scheme: 'bearer', realm: 'http://auth.example.com/token' } });
        await expect(client().resolveDigest(ref(front.host, `${childRepo}:${childTag}`))).rejects.toThrow(InsecureRegistryError);
        expect(front.tokenRequests).toHaveLength(0);
      });
    });

    describe('Retries', () => {
      it('retries a 503 after the Retry-After it was given', async () => {
        const front = await proxy({ faults: [{ status: 503, times: 2, retryAfter: '1' }] });
        const delays: number[] = [];
        const c = client({ sleep: async (ms) => void delays.push(ms) });
        expect((await c.resolveDigest(ref(front.host, `${childRepo}:${childTag}`))).digest).toBe(child.digest);
        expect(delays).toEqual([1000, 1000]);
        expect(front.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      });

      it('backs off exponentially without Retry-After and fails with RegistryUnavailableError when attempts run out', async () => {
        const front = await proxy({ faults: [{ status: 502, times: 10 }] });
        const delays: number[] = [];
        const c = client({ retry: { maxAttempts: 4, baseDelayMs: 100 }, sleep: async (ms) => void delays.push(ms) });
        const error = await c.getManifest(ref(front.host, `${childRepo}:${childTag}`)).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RegistryUnavailableError);
        expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', status: 502 });
        expect(delays).toEqual([100, 200, 400]);
        expect(front.requests).toHaveLength(4);
      });

      it('fails with RegistryRateLimitedError at once when Retry-After exceeds the longest wait', async () => {
        const front = await proxy({ faults: [{ status: 429, times: 1, retryAfter: '3600' }] });
        const delays: number[] = [];
        const error = await client({ sleep: async (ms) => void delays.push(ms) })
          .resolveDigest(ref(front.host, `${childRepo}:${childTag}`))
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RegistryRateLimitedError);
        expect(error).toMatchObject({ code: 'REGISTRY_RATE_LIMITED', retryAfterMs: 3_600_000 });
        expect(delays).toEqual([]);
        expect(front.requests).toHaveLength(1);
      });

      it('fails with RegistryUnavailableError when the registry does not answer in time', async () => {
        const front = await proxy({ delayMs: 1000 });
        const started = Date.now();
        const error = await client({ timeoutMs: 100, retry: { maxAttempts: 2, baseDelayMs: 1 } })
          .resolveDigest(ref(front.host, `${childRepo}:${childTag}`))
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RegistryUnavailableError);
        expect((error as Error).message).toMatch(/no answer within 100 ms \(after 2 attempts\)/);
        expect(Date.now() - started).toBeLessThan(900);
      });

      it('fails with RegistryUnavailableError when nothing listens', async () => {
        const front = await proxy({});
        await front.stop();
        await expect(client({ retry: { maxAttempts: 2, baseDelayMs: 1 } }).resolveDigest(ref(front.host, `${childRepo}:${childTag}`))).rejects.toThrow(
          RegistryUnavailableError,
        );
      });
    });
  });
});
