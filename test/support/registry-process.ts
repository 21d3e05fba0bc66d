/**
 * A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on a free loopback port, helpers that
 * push real images through its plain HTTP API, and a loopback proxy that puts a bearer-token realm (or basic auth,
 * faults, delays, tampering) in front of it.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, IncomingMessage, request as httpRequest, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
const INSTALL_SCRIPT = join(__dirname, '../../.ci/install-test-deps');

export type RegistryBinaryStatus = { readonly available: true; readonly path: string } | { readonly available: false; readonly reason: string };

let binaryStatus: RegistryBinaryStatus | undefined;

/**
 * The docker-registry binary, installed with .ci/install-test-deps when missing (once per process). Synchronous so a
 * test file can decide between describe and describe.skip while it is collected.
 */
export function ensureRegistryBinary(): RegistryBinaryStatus {
  if (binaryStatus) return binaryStatus;
  if (!existsSync(REGISTRY_BINARY)) {
    const install = spawnSync('bash', [INSTALL_SCRIPT], { encoding: 'utf8', timeout: 300_000 });
    if (!existsSync(REGISTRY_BINARY)) {
      const output = `${install.stderr ?? ''}${install.stdout ?? ''}`.trim().split('\n').slice(-5).join('\n');
      binaryStatus = {
        available: false,
        reason: `${REGISTRY_BINARY} is missing and ${INSTALL_SCRIPT} could not install it (${install.error?.message ?? `exit ${install.status}`}): ${output}`,
      };
      return binaryStatus;
    }
  }
  binaryStatus = { available: true, path: REGISTRY_BINARY };
  return binaryStatus;
}

export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  readonly host: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts docker-registry with filesystem storage in a temp dir and no auth; resolves once GET /v2/ answers 200. */
export async function startRegistry(options: { readonly startTimeoutMs?: number } = {}): Promise<RunningRegistry> {
  const binary = ensureRegistryBinary();
  if (!binary.available) throw new Error(binary.reason);
  // A free port can be taken between our probe and the registry's bind; try again on a fresh one.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      return await startOnce(binary.path, await freeLoopbackPort(), options.startTimeoutMs ?? 10_000);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function startOnce(binary: string, port: number, startTimeoutMs: number): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'patchline-registry-'));
  const configPath = join(dir, 'config.yml');
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = `${output}${chunk.toString('utf8')}`.slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never leave the registry behind if the test process dies without calling stop().
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    await stopChild(child, exited);
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`docker-registry exited (${child.exitCode ?? child.signalCode}) before answering on ${url}: ${output.trim()}`);
    }
    const ready = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer GET ${url}/v2/ within ${startTimeoutMs} ms: ${output.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return { url, host: `127.0.0.1:${port}`, pid: child.pid!, stop };
}

/** SIGTERM exactly this child, SIGKILL after the timeout. */
async function stopChild(child: ChildProcess, exited: Promise<void>, timeoutMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

async function freeLoopbackPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---------------------------------------------------------------------------------------------------------------
// Pushing images through the distribution API
// ---------------------------------------------------------------------------------------------------------------

const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;
const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  index: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type ImageFormat = 'oci' | 'docker';

export interface TestPlatform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface PushImageOptions {
  /** Files per layer (path → content); each layer becomes a real gzipped tar. @default one layer with /etc/patchline */
  readonly layers?: ReadonlyArray<Readonly<Record<string, string>>>;
  /** Config labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Merged over the generated image config (architecture, os, config, rootfs, history). */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Manifest annotations (OCI format only carries them officially; distribution stores them either way). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** @default linux/amd64 */
  readonly platform?: TestPlatform;
  /** @default oci */
  readonly format?: ImageFormat;
}

export interface PushedImage {
  /** The digest the registry answered the manifest PUT with. */
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly manifest: Buffer;
  readonly configDigest: string;
  readonly config: Buffer;
  readonly layerDigests: readonly string[];
  readonly platform: TestPlatform;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A minimal ustar archive of regular files, as a layer holds. */
export function tarArchive(files: Readonly<Record<string, string>>): Buffer {
  const blocks: Buffer[] = [];
  for (const [path, content] of Object.entries(files)) {
    const data = Buffer.from(content, 'utf8');
    const header = Buffer.alloc(512);
    const name = path.replace(/^\/+/, '');
    if (Buffer.byteLength(name) > 100) throw new Error(`tar path too long for this helper: ${name}`);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 8, 'ascii');
    header.write('0000000\0', 108, 8, 'ascii');
    header.write('0000000\0', 116, 8, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 12, 'ascii');
    header.write('00000000000\0', 136, 12, 'ascii');
    header.write('        ', 148, 8, 'ascii');
    header.write('0', 156, 1, 'ascii');
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    let checksum = 0;
    for (const byte of header) checksum += byte;
    header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Monolithic upload in two steps (POST opens the session, PUT with ?digest= closes it), which every registry takes. */
export async function pushBlob(url: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256Digest(bytes);
  const opened = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await opened.arrayBuffer();
  const location = opened.headers.get('location');
  if (opened.status !== 202 || !location) throw new Error(`blob upload to ${repo} not opened: HTTP ${opened.status}`);
  const target = new URL(location, url);
  target.searchParams.set('digest', digest);
  const closed = await fetch(target, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) },
    body: bytes,
  });
  const text = await closed.text();
  if (closed.status !== 201) throw new Error(`blob ${digest} upload to ${repo} failed: HTTP ${closed.status} ${text}`);
  return digest;
}

/** PUT a manifest under a tag or digest; returns the registry's Docker-Content-Digest, checked against our own hash. */
export async function pushManifest(url: string, repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
  const response = await fetch(`${url}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`manifest PUT ${repo}:${reference} failed: HTTP ${response.status} ${text}`);
  const digest = response.headers.get('docker-content-digest');
  if (digest !== sha256Digest(bytes)) throw new Error(`registry answered digest ${digest}, the manifest hashes to ${sha256Digest(bytes)}`);
  return digest;
}

/** Pushes a real image (gzipped tar layers, config with diff_ids, manifest); `tag` undefined pushes it by digest only. */
export async function pushImage(url: string, repo: string, tag: string | undefined, options: PushImageOptions = {}): Promise<PushedImage> {
  const types = options.format === 'docker' ? DOCKER : OCI;
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const layerFiles = options.layers ?? [{ 'etc/patchline': `${repo}:${tag ?? 'untagged'}\n` }];
  const layers = layerFiles.map((files) => {
    const tar = tarArchive(files);
    return { diffId: sha256Digest(tar), blob: gzipSync(tar) };
  });
  const layerDescriptors = [];
  for (const layer of layers) {
    layerDescriptors.push({ mediaType: types.layer, digest: await pushBlob(url, repo, layer.blob), size: layer.blob.length });
  }
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: options.labels ?? null },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: '2026-01-01T00:00:00Z', created_by: 'patchline test' })),
      ...(options.config ?? {}),
    }),
  );
  const configDigest = await pushBlob(url, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, digest: configDigest, size: config.length },
      layers: layerDescriptors,
      ...(options.annotations ? { annotations: options.annotations } : {}),
    }),
  );
  const digest = await pushManifest(url, repo, tag ?? sha256Digest(manifest), types.manifest, manifest);
  return {
    digest,
    mediaType: types.manifest,
    size: manifest.length,
    manifest,
    configDigest,
    config,
    layerDigests: layerDescriptors.map((d) => d.digest),
    platform,
  };
}

export interface PushedIndex {
  readonly digest: string;
  readonly mediaType: string;
  readonly index: Buffer;
}

/** Pushes an index (OCI) or manifest list (Docker) over images already pushed to the same repository. */
export async function pushIndex(
  url: string,
  repo: string,
  tag: string,
  images: ReadonlyArray<PushedImage & { readonly descriptorAnnotations?: Readonly<Record<string, string>> }>,
  options: { readonly annotations?: Readonly<Record<string, string>>; readonly format?: ImageFormat } = {},
): Promise<PushedIndex> {
  const types = options.format === 'docker' ? DOCKER : OCI;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: images.map((image) => ({
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.size,
        platform: image.platform,
        ...(image.descriptorAnnotations ? { annotations: image.descriptorAnnotations } : {}),
      })),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    }),
  );
  const digest = await pushManifest(url, repo, tag, types.index, index);
  return { digest, mediaType: types.index, index };
}

// ---------------------------------------------------------------------------------------------------------------
// A loopback proxy in front of the registry: token realm, basic auth, faults, delays, tampering
// ---------------------------------------------------------------------------------------------------------------

export interface ProxyCredentials {
  readonly username: string;
  readonly password: string;
}

export type ProxyAuth =
  | {
      readonly scheme: 'bearer';
      /** @default patchline-test-registry */
      readonly service?: string;
      /** expires_in of issued tokens. @default 300 */
      readonly expiresInSeconds?: number;
      /** When set, the token endpoint demands these as Basic credentials (a private repository). */
      readonly credentials?: ProxyCredentials;
      /** Realm advertised in the challenge instead of this proxy's own /token. */
      readonly realm?: string;
    }
  | { readonly scheme: 'basic'; readonly credentials: ProxyCredentials };

export interface ProxyFault {
  readonly status: number;
  /** How many registry requests in a row get this answer. */
  readonly times: number;
  readonly retryAfter?: string;
}

export interface RegistryProxyOptions {
  readonly auth?: ProxyAuth;
  /** Rewrites successful GET response bodies; return undefined to leave one alone. */
  readonly tamper?: (request: { readonly method: string; readonly path: string }, body: Buffer) => Buffer | undefined;
  /** Response headers dropped (lower case), e.g. docker-content-digest. */
  readonly stripHeaders?: readonly string[];
  /** Answered before anything reaches the registry, in order. */
  readonly faults?: readonly ProxyFault[];
  /** Delay before answering registry requests. */
  readonly delayMs?: number;
}

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** `Bearer`, `Basic` or undefined. */
  readonly authScheme?: string;
}

export interface RegistryProxy {
  readonly url: string;
  readonly host: string;
  /** Registry requests (not token requests), in order. */
  readonly requests: ProxiedRequest[];
  /** Token requests, with their scope parameters. */
  readonly tokenRequests: Array<{ readonly service: string | null; readonly scopes: string[] }>;
  stop(): Promise<void>;
}

const REPOSITORY_PATH = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//;

export async function startRegistryProxy(upstreamUrl: string, options: RegistryProxyOptions = {}): Promise<RegistryProxy> {
  const upstream = new URL(upstreamUrl);
  const requests: ProxiedRequest[] = [];
  const tokenRequests: Array<{ service: string | null; scopes: string[] }> = [];
  const tokens = new Map<string, readonly string[]>();
  const faults = (options.faults ?? []).map((f) => ({ ...f, left: f.times }));
  let selfUrl = '';

  const basicMatches = (header: string | undefined, credentials: ProxyCredentials): boolean =>
    header === `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;

  const handleToken = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const auth = options.auth;
    const scopes = url.searchParams.getAll('scope');
    tokenRequests.push({ service: url.searchParams.get('service'), scopes });
    if (auth?.scheme !== 'bearer') return void res.writeHead(404).end();
    if (auth.credentials && !basicMatches(req.headers.authorization, auth.credentials)) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const token = randomBytes(16).toString('hex');
    tokens.set(token, scopes);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: auth.expiresInSeconds ?? 300, issued_at: new Date().toISOString() }));
  };

  const authorize = (req: IncomingMessage, path: string): Record<string, string> | undefined => {
    const auth = options.auth;
    if (!auth) return undefined;
    const repo = REPOSITORY_PATH.exec(path)?.[1];
    const header = req.headers.authorization;
    if (auth.scheme === 'basic') {
      return basicMatches(header, auth.credentials) ? undefined : { 'www-authenticate': 'Basic realm="patchline-test-registry"' };
    }
    const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    const granted = token !== undefined ? tokens.get(token) : undefined;
    const needed = repo ? `repository:${repo}:pull` : undefined;
    if (granted && (needed === undefined || granted.includes(needed))) return undefined;
    const realm = auth.realm ?? `${selfUrl}/token`;
    const service = auth.service ?? 'patchline-test-registry';
    return { 'www-authenticate': `Bearer realm="${realm}",service="${service}"${needed ? `,scope="${needed}"` : ''}` };
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    if (url.pathname === '/token') return handleToken(req, res, url);
    const method = req.method ?? 'GET';
    const authScheme = req.headers.authorization?.split(' ')[0];
    const record = (status: number): void => void requests.push({ method, path: url.pathname + url.search, status, authScheme });
    const answer = async (): Promise<void> => {
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      if (res.destroyed) return;
      const fault = faults.find((f) => f.left > 0);
      if (fault) {
        fault.left -= 1;
        record(fault.status);
        res.writeHead(fault.status, {
          'content-type': 'application/json',
          ...(fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {}),
        });
        res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
        return;
      }
      const challenge = authorize(req, url.pathname);
      if (challenge) {
        record(401);
        res.writeHead(401, { 'content-type': 'application/json', ...challenge });
        res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return;
      }
      const upstreamResponse = await forward(upstream, req, url.pathname + url.search);
      let body = upstreamResponse.body;
      if (method === 'GET' && upstreamResponse.status === 200 && options.tamper) {
        body = options.tamper({ method, path: url.pathname }, body) ?? body;
      }
      const headers = { ...upstreamResponse.headers };
      for (const name of options.stripHeaders ?? []) delete headers[name];
      if (method !== 'HEAD') headers['content-length'] = String(body.length);
      record(upstreamResponse.status);
      res.writeHead(upstreamResponse.status, headers);
      res.end(method === 'HEAD' ? undefined : body);
    };
    answer().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  selfUrl = `http://127.0.0.1:${port}`;
  return {
    url: selfUrl,
    host: `127.0.0.1:${port}`,
    requests,
    tokenRequests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function forward(
  upstream: URL,
  req: IncomingMessage,
  path: string,
): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && name !== 'authorization' && name !== 'host' && name !== 'connection') headers[name] = value;
  }
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers },
      (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => {
          const responseHeaders: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(incoming.headers)) {
            if (value !== undefined && name !== 'connection' && name !== 'transfer-encoding') responseHeaders[name] = value;
          }
          resolve({ status: incoming.statusCode ?? 502, headers: responseHeaders, body: Buffer.concat(chunks) });
        });
        incoming.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    req.pipe(outgoing);
  });
}
