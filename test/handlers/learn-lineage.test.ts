import { BatchGetImageCommand, ECRClient, GetDownloadUrlForLayerCommand, ListTagsForResourceCommand } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'crypto';
import { join } from 'path';
import { loadLineage } from '../../cli/input-files';
import { createLocalDynamoDbClient, createPatchlineTable } from '../../cli/local/dynamodb-emulator';
import { ACCEPTED_MANIFEST_TYPES, SdkEcrImages } from '../../lambdas/aws/ecr-images';
import { awsSpokeEcrImages, SpokeRegistryAccessError } from '../../lambdas/aws/spoke-ecr-images';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { learnLineageSessionName } from '../../lambdas/domain/learned-lineage';
import { ImageNode } from '../../lambdas/domain/lineage';
import { RegistryScope, UnconfiguredRegistryError } from '../../lambdas/domain/registry-scope';
import { BaseImageAnnotation, ManifestMediaType } from '../../lambdas/domain/oci-base-image';
import { LearnLineageDependencies, learnLineageDependencies, LearnOutcome, makeLearnLineageHandler, MissingLearnLineageDependenciesError } from '../../lambdas/handlers/learn-lineage';
import { DynamoLineageStore } from '../../lambdas/store/dynamo-lineage-store';
import { LineageBusyError } from '../../lambdas/store/lineage-store';
import { LineageWriteLease } from '../../lambdas/store/lineage-write-lease';
import { startTestTable } from '../support/dynamodb';
import { digestOf, projectConfig, pushEvent, REPO_ROOT } from '../support/template';
import { tableStores } from '../../lambdas/handlers/dependencies';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
/** The real ECR sample's account and region (pushEvent derives from it). */
const REGISTRY = '123456789012.dkr.ecr.us-west-2.amazonaws.com';
const REPOSITORY_ARN = (repository: string): string => `arn:aws:ecr:us-west-2:123456789012:repository/${repository}`;
const NOW = new Date('2024-03-01T00:00:00Z');
const PYTHON_DIGEST = digestOf('enterprise/python-311 v7');

const ecr = mockClient(ECRClient);
const sts = mockClient(STSClient);
type Emulator = Awaited<ReturnType<typeof startTestTable>>;
let emulator: Emulator;
let tables = 0;
beforeAll(async () => {
  emulator = await startTestTable();
});
afterAll(async () => {
  await emulator.stop();
});
beforeEach(() => {
  ecr.reset();
  sts.reset();
});

const sha256 = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

function manifest(annotations?: Record<string, unknown>, configDigest = digestOf('config')): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: ManifestMediaType.OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 100 },
    layers: [],
    ...(annotations ? { annotations } : {}),
  });
}

const based = (name: string, digest?: string): Record<string, string> => ({ [BaseImageAnnotation.NAME]: name, ...(digest ? { [BaseImageAnnotation.DIGEST]: digest } : {}) });

/** ECR answers BatchGetImage for these digests (anything else: ImageNotFound). */
function ecrHolds(images: Record<string, string>): void {
  ecr.on(BatchGetImageCommand).callsFake((input: { imageIds: Array<{ imageDigest: string }> }) => {
    const digest = input.imageIds[0].imageDigest;
    return images[digest] !== undefined
      ? { images: [{ imageManifest: images[digest], imageId: { imageDigest: digest } }], failures: [] }
      : { images: [], failures: [{ imageId: { imageDigest: digest }, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' }] };
  });
}

function repositoryTagged(tags: Record<string, string>): void {
  ecr.on(ListTagsForResourceCommand).resolves({ tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) });
}

/** The handler on a fresh table holding `lineage`, reading ECR through the real SDK client (mocked) and `fetch`. */
async function setup(lineage: readonly ImageNode[] = SEED, fetchBlob: typeof fetch = async () => new Response('{}')) {
  const tableName = `learn-${++tables}`;
  await createPatchlineTable(emulator.client, tableName);
  const client = emulator.client;
  const config = projectConfig();
  const deps: LearnLineageDependencies = {
    ...tableStores({ client, tableName, concurrency: 10 }),
    taskTokens: { succeed: async () => true, fail: async () => true },
    defaultBuildSeconds: 600,
    now: () => NOW,
    ...learnLineageDependencies({
      client,
      tableName,
      ecr: new SdkEcrImages({ client: new ECRClient({ region: 'us-west-2' }), fetch: fetchBlob }),
      knownOwners: Object.keys(config.owners),
      buildProjects: config.rebuild.projects,
    }),
  };
  if (lineage.length > 0) await deps.lineage.putImages(lineage);
  return { handle: makeLearnLineageHandler(deps), deps, discovery: deps.learnLineage!.discovery, tableName };
}

/** The stored lineage, comparable across a refused change. */
async function snapshot(deps: LearnLineageDependencies): Promise<unknown> {
  const graph = await deps.lineage.loadGraph();
  return {
    nodes: [...graph.images()].sort((a, b) => a.image.localeCompare(b.image)),
    below: await deps.lineage.descendants('enterprise/python-311'),
  };
}

describe('Function: makeLearnLineageHandler', () => {
  it('adds an unknown image below the base its manifest declares, with owner and build project from its repository tags', async () => {
    const { handle, deps, discovery } = await setup();
    const digest = digestOf('apps/new-api 1');
    ecrHolds({ [digest]: manifest(based(`${REGISTRY}/enterprise/python-311@${PYTHON_DIGEST}`, PYTHON_DIGEST)) });
    repositoryTagged({ owner: 'payments-team', 'build-project': 'apps-new-api', 'cost-center': '42' });

    const result = await handle(pushEvent('apps/new-api', digest, '1.0.0'));

    expect(result).toEqual({
      image: 'apps/new-api',
      digest,
      outcome: LearnOutcome.LEARNED,
      change: 'added',
      parent: 'enterprise/python-311',
      parentDigest: PYTHON_DIGEST,
      source: 'manifest-annotation',
      owner: 'payments-team',
      ownerSource: 'repository-tag',
      reason: null,
    });
    // Exactly one manifest read (the config is not needed: the manifest declares the base) and one tag read.
    expect(ecr.commandCalls(BatchGetImageCommand).map((c) => c.args[0].input)).toEqual([
      { repositoryName: 'apps/new-api', imageIds: [{ imageDigest: digest }], acceptedMediaTypes: [...ACCEPTED_MANIFEST_TYPES] },
    ]);
    expect(ACCEPTED_MANIFEST_TYPES).toEqual(expect.arrayContaining([ManifestMediaType.OCI_INDEX, ManifestMediaType.OCI_MANIFEST, ManifestMediaType.DOCKER_MANIFEST, ManifestMediaType.DOCKER_MANIFEST_LIST]));
    expect(ecr.commandCalls(ListTagsForResourceCommand).map((c) => c.args[0].input)).toEqual([{ resourceArn: REPOSITORY_ARN('apps/new-api') }]);
    expect(ecr.commandCalls(GetDownloadUrlForLayerCommand)).toHaveLength(0);

    expect(await deps.lineage.getImage('apps/new-api')).toEqual({
      image: 'apps/new-api',
      tier: 'application',
      owner: 'payments-team',
      parents: [{ image: 'enterprise/python-311', role: 'runtime' }],
      build: { project: 'apps-new-api' },
    });
    expect((await deps.lineage.descendants('enterprise/python-311')).map((d) => d.image)).toContain('apps/new-api');
    expect(await deps.lineage.getVersion('apps/new-api', digest)).toMatchObject({ parentDigests: { 'enterprise/python-311': PYTHON_DIGEST }, tags: ['1.0.0'] });
    expect(await discovery.get('apps/new-api')).toMatchObject({
      learned: { digest, source: 'manifest-annotation', change: 'added', parent: 'enterprise/python-311', baseDigest: PYTHON_DIGEST },
      tagged: { source: 'repository-tag', owner: 'payments-team', project: 'apps-new-api', notes: [] },
    });
  });

  it('reads the platform manifest of an index without annotations, then the config labels through GetDownloadUrlForLayer', async () => {
    const config = JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: based('docker.io/library/python:3.12-slim', digestOf('python 3.12')) } });
    const configDigest = sha256(config);
    const amd64 = digestOf('amd64 manifest');
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: ManifestMediaType.OCI_INDEX,
      manifests: [
        { mediaType: ManifestMediaType.OCI_MANIFEST, digest: digestOf('attestation'), size: 1, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
        { mediaType: ManifestMediaType.OCI_MANIFEST, digest: digestOf('arm64 manifest'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: ManifestMediaType.OCI_MANIFEST, digest: amd64, size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    });
    const pushed = digestOf('apps/label-api index');
    ecrHolds({ [pushed]: index, [amd64]: manifest(undefined, configDigest) });
    ecr.on(GetDownloadUrlForLayerCommand).resolves({ downloadUrl: 'https://prod-us-west-2-starport-layer-bucket.s3.us-west-2.amazonaws.com/blob?X-Amz-Signature=x', layerDigest: configDigest });
    repositoryTagged({});
    const fetched: string[] = [];
    const { handle, deps } = await setup(SEED, async (url) => {
      fetched.push(String(url));
      return new Response(config);
    });

    const result = await handle(pushEvent('apps/label-api', pushed));

    expect(result).toMatchObject({ outcome: LearnOutcome.LEARNED, parent: 'python:3.12-slim', source: 'config-label', owner: null, ownerSource: null });
    expect(ecr.commandCalls(BatchGetImageCommand).map((c) => c.args[0].input.imageIds)).toEqual([[{ imageDigest: pushed }], [{ imageDigest: amd64 }]]);
    expect(ecr.commandCalls(GetDownloadUrlForLayerCommand).map((c) => c.args[0].input)).toEqual([{ repositoryName: 'apps/label-api', layerDigest: configDigest }]);
    expect(fetched).toHaveLength(1);
    // No owner tag: stored unowned, not dropped.
    expect(await deps.lineage.getImage('apps/label-api')).toEqual({ image: 'apps/label-api', tier: 'application', parents: [{ image: 'python:3.12-slim', role: 'runtime' }] });
  });

  it('takes index annotations without reading any platform manifest', async () => {
    const pushed = digestOf('index with annotations');
    ecrHolds({ [pushed]: JSON.stringify({ schemaVersion: 2, mediaType: ManifestMediaType.OCI_INDEX, manifests: [], annotations: based('docker.io/library/debian:bookworm-slim') }) });
    repositoryTagged({ owner: 'orders-team' });
    const { handle } = await setup();
    expect(await handle(pushEvent('apps/debian-tool', pushed))).toMatchObject({ outcome: LearnOutcome.LEARNED, parent: 'debian:bookworm-slim', source: 'index-annotation', parentDigest: null });
    expect(ecr.commandCalls(BatchGetImageCommand)).toHaveLength(1);
  });

  it('re-parents only the runtime parent: build-stage parents, owner, tier and build project are kept and no tags are read', async () => {
    const lineage: ImageNode[] = SEED.map((n) =>
      n.image === 'apps/payments-api' ? { ...n, parents: [...n.parents, { image: 'builders/python-ci', role: 'build' as const }] } : n,
    );
    const { handle, deps, discovery } = await setup(lineage);
    const pushed = digestOf('payments on 3.12');
    ecrHolds({ [pushed]: manifest(based('python:3.12', digestOf('python:3.12'))) });

    const result = await handle(pushEvent('apps/payments-api', pushed));

    expect(result).toMatchObject({ outcome: LearnOutcome.LEARNED, change: 'reparented', parent: 'python:3.12', owner: 'payments-team', ownerSource: 'lineage' });
    expect(await deps.lineage.getImage('apps/payments-api')).toEqual({
      image: 'apps/payments-api',
      tier: 'application',
      owner: 'payments-team',
      parents: [
        { image: 'python:3.12', role: 'runtime' },
        { image: 'builders/python-ci', role: 'build' },
      ],
      build: { project: 'apps-payments-api' },
    });
    expect((await deps.lineage.ancestors('apps/payments-api')).map((a) => a.image).sort()).toEqual(['builders/python-ci', 'enterprise/python-311', 'python:3.12', 'registry.access.redhat.com/ubi9/python-311:1-34'].sort());
    expect(ecr.commandCalls(ListTagsForResourceCommand)).toHaveLength(0);
    expect((await discovery.get('apps/payments-api'))?.learned).toMatchObject({ change: 'reparented', previousParent: 'enterprise/python-311' });
  });

  it('keeps a parent declared by tag when a rebuild pins it by digest, and records that digest under the declared key', async () => {
    const { handle, deps } = await setup();
    const before = await snapshot(deps);
    const pushed = digestOf('enterprise rebuild');
    const ubi = digestOf('ubi9 python 1-35');
    ecrHolds({ [pushed]: manifest(based(`registry.access.redhat.com/ubi9/python-311@${ubi}`, ubi)) });

    expect(await handle(pushEvent('enterprise/python-311', pushed))).toMatchObject({ outcome: LearnOutcome.UNCHANGED, change: 'unchanged', parent: 'registry.access.redhat.com/ubi9/python-311:1-34' });
    expect(await snapshot(deps)).toEqual(before);
    expect((await deps.lineage.getVersion('enterprise/python-311', pushed))?.parentDigests).toEqual({ 'registry.access.redhat.com/ubi9/python-311:1-34': ubi });
  });

  it('leaves an image unowned when its owner tag is not a valid or configured owner, and says why', async () => {
    const { handle, deps, discovery } = await setup();
    for (const [repository, owner] of [['apps/hostile-owner', 'x; rm -rf /'], ['apps/unknown-owner', 'nobody-team']] as const) {
      const pushed = digestOf(repository);
      ecrHolds({ [pushed]: manifest(based(`${REGISTRY}/enterprise/python-311@${PYTHON_DIGEST}`)) });
      repositoryTagged({ owner, 'build-project': 'not-configured-project' });
      expect(await handle(pushEvent(repository, pushed))).toMatchObject({ outcome: LearnOutcome.LEARNED, owner: null, ownerSource: null });
      const node = await deps.lineage.getImage(repository);
      expect(node).toBeDefined();
      expect(node?.owner).toBeUndefined();
      expect(node?.build).toBeUndefined();
      const notes = (await discovery.get(repository))?.tagged?.notes ?? [];
      expect(notes).toHaveLength(2);
      expect(notes[0]).toContain('"owner"');
      expect(notes[1]).toContain('not a configured CodeBuild project');
    }
  });

  it('takes the owner from repository tags for a known unowned image even when it declares no base', async () => {
    const lineage = SEED.map((n) => (n.image === 'apps/orders-api' ? { ...n, owner: undefined } : n));
    const config = JSON.stringify({ config: { Labels: null } });
    const { handle, deps } = await setup(lineage, async () => new Response(config));
    const pushed = digestOf('orders no base');
    ecrHolds({ [pushed]: manifest(undefined, sha256(config)) });
    ecr.on(GetDownloadUrlForLayerCommand).resolves({ downloadUrl: 'https://blob.example/config' });
    repositoryTagged({ owner: 'orders-team' });

    const result = await handle(pushEvent('apps/orders-api', pushed));

    expect(result).toMatchObject({ outcome: LearnOutcome.NOT_DECLARED, owner: 'orders-team', ownerSource: 'repository-tag', parent: null });
    expect(await deps.lineage.getImage('apps/orders-api')).toMatchObject({ owner: 'orders-team', parents: [{ image: 'enterprise/python-311', role: 'runtime' }] });
  });

  it('loses no field when two pushes of one image are learned at once: the parent one learned and the owner the other took both stay', async () => {
    const lineage = SEED.map((n) => (n.image === 'apps/orders-api' ? { ...n, owner: undefined } : n));
    const config = JSON.stringify({ config: { Labels: null } });
    const { handle, deps, tableName } = await setup(lineage, async () => new Response(config));
    const [rebased, plain] = [digestOf('orders on 3.12'), digestOf('orders, no base')];
    ecrHolds({ [rebased]: manifest(based('python:3.12', digestOf('python:3.12'))), [plain]: manifest(undefined, sha256(config)) });
    ecr.on(GetDownloadUrlForLayerCommand).resolves({ downloadUrl: 'https://blob.example/config' });
    repositoryTagged({ owner: 'orders-team' });
    // The plain push's lineage store: once it has read the node, the re-based push is learned whole before its lease put goes out.
    let nodeRead!: () => void;
    const read = new Promise<void>((resolve) => (nodeRead = resolve));
    let rebasedLearned!: () => void;
    const learnedFirst = new Promise<void>((resolve) => (rebasedLearned = resolve));
    const client = createLocalDynamoDbClient(emulator.endpoint);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutItemCommand') await learnedFirst;
        const out = await next(args);
        if (context.commandName === 'GetItemCommand') nodeRead();
        return out;
      },
      { step: 'initialize' },
    );
    const handlePlain = makeLearnLineageHandler({ ...deps, lineage: new DynamoLineageStore({ client, tableName, lease: { acquireTimeoutMs: 30_000 } }) });

    const pendingPlain = handlePlain(pushEvent('apps/orders-api', plain));
    await read;
    const first = await handle(pushEvent('apps/orders-api', rebased));
    rebasedLearned();
    const second = await pendingPlain;
    client.destroy();

    expect(first).toMatchObject({ outcome: LearnOutcome.LEARNED, change: 'reparented', parent: 'python:3.12', owner: 'orders-team', ownerSource: 'repository-tag' });
    // The plain push decided on the node as the re-based push left it: the owner is the lineage's now, nothing to write.
    expect(second).toMatchObject({ outcome: LearnOutcome.NOT_DECLARED, change: null, parent: null, owner: 'orders-team', ownerSource: 'lineage' });
    expect(await deps.lineage.getImage('apps/orders-api')).toEqual({
      image: 'apps/orders-api',
      tier: 'application',
      owner: 'orders-team',
      parents: [{ image: 'python:3.12', role: 'runtime' }],
      build: { project: 'apps-orders-api' },
    });
    expect((await deps.lineage.descendants('python:3.12')).map((d) => d.image)).toEqual(['apps/orders-api']);
    expect((await deps.lineage.descendants('enterprise/python-311')).map((d) => d.image)).not.toContain('apps/orders-api');
  });

  it('reports an image ECR does not hold and reads nothing else', async () => {
    const { handle } = await setup();
    ecrHolds({});
    expect(await handle(pushEvent('apps/payments-api', digestOf('gone')))).toMatchObject({ outcome: LearnOutcome.IMAGE_NOT_FOUND, parent: null });
    expect(ecr.commandCalls(ListTagsForResourceCommand)).toHaveLength(0);
  });

  describe('bad input', () => {
    it('refuses an invalid push event before any ECR call (the workflow dead-letters it)', async () => {
      const { handle } = await setup([]);
      const event = pushEvent('apps/payments-api', 'sha256:not-a-digest');
      await expect(handle(event)).rejects.toThrow(InvalidEventError);
      await expect(handle({ ...event, detail: { ...(event.detail as object), 'repository-name': 'Apps/UPPER' } })).rejects.toThrow(InvalidEventError);
      expect(ecr.calls()).toHaveLength(0);
    });

    it('refuses a cycle through a learned parent, naming it, and loses nothing stored', async () => {
      const { handle, deps, discovery } = await setup();
      const before = await snapshot(deps);
      const pushed = digestOf('enterprise from payments');
      ecrHolds({ [pushed]: manifest(based(`${REGISTRY}/apps/payments-api@${digestOf('payments')}`)) });

      const result = await handle(pushEvent('enterprise/python-311', pushed));

      expect(result.outcome).toBe(LearnOutcome.REFUSED);
      expect(result.reason).toMatch(/lineage cycle refused: .*enterprise\/python-311.*apps\/payments-api/);
      expect(await snapshot(deps)).toEqual(before);
      expect(await deps.lineage.getVersion('enterprise/python-311', pushed)).toBeUndefined();
      expect((await discovery.get('enterprise/python-311'))?.refused).toMatchObject({ digest: pushed, code: 'LINEAGE_CYCLE' });
    });

    it('refuses an image that declares itself as its base', async () => {
      const { handle, deps } = await setup();
      const before = await snapshot(deps);
      const pushed = digestOf('self');
      ecrHolds({ [pushed]: manifest(based(`${REGISTRY}/apps/orders-api:latest`)) });
      expect(await handle(pushEvent('apps/orders-api', pushed))).toMatchObject({ outcome: LearnOutcome.REFUSED, reason: expect.stringContaining('cycle') });
      expect(await snapshot(deps)).toEqual(before);
    });

    const HOSTILE: Array<[string, Record<string, unknown>, string]> = [
      ['a name with whitespace', based('python:3.12 ; curl evil.example'), 'INVALID_BASE_IMAGE_ANNOTATION'],
      ['a malformed reference', based('Python:3.12'), 'INVALID_BASE_IMAGE_ANNOTATION'],
      ['a name longer than 512 characters', based(`registry.example/${'a'.repeat(600)}:1`), 'INVALID_BASE_IMAGE_ANNOTATION'],
      ['a non-string name', { [BaseImageAnnotation.NAME]: { toString: 'python:3.12' } }, 'INVALID_BASE_IMAGE_ANNOTATION'],
      ['a malformed digest', { ...based('python:3.12'), [BaseImageAnnotation.DIGEST]: 'sha256:../../etc/passwd' }, 'INVALID_BASE_IMAGE_ANNOTATION'],
      ['a digest that contradicts the pinned name', based(`python:3.12@${digestOf('a')}`, digestOf('b')), 'BASE_IMAGE_DIGEST_CONFLICT'],
    ];
    it.each(HOSTILE)('refuses %s in the annotations, records why and changes nothing', async (_what, annotations, code) => {
      const { handle, deps, discovery } = await setup();
      const before = await snapshot(deps);
      const pushed = digestOf(JSON.stringify(annotations).slice(0, 100));
      ecrHolds({ [pushed]: manifest(annotations) });
      const result = await handle(pushEvent('apps/payments-api', pushed));
      expect(result.outcome).toBe(LearnOutcome.REFUSED);
      expect(await snapshot(deps)).toEqual(before);
      expect((await discovery.get('apps/payments-api'))?.refused?.code).toBe(code);
    });

    it('refuses a manifest of an unsupported media type and one that is not JSON', async () => {
      const { handle, discovery } = await setup();
      const [a, b] = [digestOf('schema1'), digestOf('garbage')];
      ecrHolds({ [a]: JSON.stringify({ schemaVersion: 1, mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws' }), [b]: '{"schemaVersion": 2,' });
      expect((await handle(pushEvent('apps/orders-api', a))).outcome).toBe(LearnOutcome.REFUSED);
      expect((await discovery.get('apps/orders-api'))?.refused?.code).toBe('UNSUPPORTED_MANIFEST');
      expect((await handle(pushEvent('apps/orders-api', b))).outcome).toBe(LearnOutcome.REFUSED);
      expect((await discovery.get('apps/orders-api'))?.refused?.code).toBe('INVALID_MANIFEST');
    });

    it('refuses a config blob whose content does not hash to its digest', async () => {
      const config = JSON.stringify({ config: { Labels: based('python:3.12') } });
      const pushed = digestOf('mismatch');
      ecrHolds({ [pushed]: manifest(undefined, sha256(config)) });
      ecr.on(GetDownloadUrlForLayerCommand).resolves({ downloadUrl: 'https://blob.example/config' });
      const { handle, deps, discovery } = await setup(SEED, async () => new Response(config.replace('3.12', '3.13')));
      const before = await snapshot(deps);
      expect((await handle(pushEvent('apps/orders-api', pushed))).outcome).toBe(LearnOutcome.REFUSED);
      expect((await discovery.get('apps/orders-api'))?.refused?.code).toBe('BLOB_DIGEST_MISMATCH');
      expect(await snapshot(deps)).toEqual(before);
    });

    it('stops reading a config blob above 8 MiB even when the download hides its length', async () => {
      const pushed = digestOf('huge');
      ecrHolds({ [pushed]: manifest(undefined, digestOf('huge config')) });
      ecr.on(GetDownloadUrlForLayerCommand).resolves({ downloadUrl: 'https://blob.example/config' });
      let served = 0;
      const chunk = new Uint8Array(1024 * 1024);
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          served += chunk.length;
          controller.enqueue(chunk);
        },
      });
      const { handle, discovery } = await setup(SEED, async () => new Response(endless));
      expect((await handle(pushEvent('apps/orders-api', pushed))).outcome).toBe(LearnOutcome.REFUSED);
      expect((await discovery.get('apps/orders-api'))?.refused?.code).toBe('BLOB_TOO_LARGE');
      expect(served).toBeLessThanOrEqual(10 * 1024 * 1024);
    });

    it('fails (for the workflow to retry, then go on) when ECR throttles, and records nothing', async () => {
      const { handle, discovery } = await setup();
      ecr.on(BatchGetImageCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
      await expect(handle(pushEvent('apps/orders-api', digestOf('throttled')))).rejects.toThrow('Rate exceeded');
      expect(await discovery.get('apps/orders-api')).toBeUndefined();
    });

    it('fails with LineageBusyError (for the workflow to retry) while another lineage writer holds the lease, and records no refusal', async () => {
      const { deps, discovery, tableName } = await setup();
      const importing = await LineageWriteLease.acquire(DynamoDBDocumentClient.from(emulator.client), tableName, { writer: 'patchline lineage import' });
      const handle = makeLearnLineageHandler({ ...deps, lineage: new DynamoLineageStore({ client: emulator.client, tableName, lease: { acquireTimeoutMs: 150 } }) });
      const digest = digestOf('apps/new-api busy');
      ecrHolds({ [digest]: manifest(based(`${REGISTRY}/enterprise/python-311@${PYTHON_DIGEST}`, PYTHON_DIGEST)) });
      repositoryTagged({ owner: 'payments-team', 'build-project': 'apps-new-api' });

      const error = await handle(pushEvent('apps/new-api', digest)).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(LineageBusyError);
      expect((error as Error).name).toBe('LineageBusyError'); // what the LearnLineage Retry matches
      expect((error as Error).message).toMatch(/another lineage writer \(patchline lineage import#[0-9a-f]{8}\) holds the lineage write lease until .*wrote nothing/);
      expect(await deps.lineage.getImage('apps/new-api')).toBeUndefined();
      expect((await discovery.get('apps/new-api'))?.refused).toBeUndefined();

      // The workflow's retry, once the import has released the lease, learns the image.
      expect(await importing.release(false)).toBe(true);
      expect((await handle(pushEvent('apps/new-api', digest))).outcome).toBe(LearnOutcome.LEARNED);
      expect((await deps.lineage.getImage('apps/new-api'))?.parents).toEqual([{ image: 'enterprise/python-311', role: 'runtime' }]);
    });

    it('fails without its own dependencies', async () => {
      const { deps } = await setup([]);
      const { learnLineage: _omitted, ...shared } = deps;
      await expect(makeLearnLineageHandler(shared)(pushEvent('apps/orders-api', digestOf('x')))).rejects.toThrow(MissingLearnLineageDependenciesError);
    });
  });
});

describe('Function: makeLearnLineageHandler (organization: spoke registries)', () => {
  const HUB = { account: '111111111111', region: 'eu-west-1' };
  const PAYMENTS = { account: '222222222222', region: 'eu-west-1' };
  const ORDERS = { account: '333333333333', region: 'us-east-1' };
  const HUB_REGISTRY = `${HUB.account}.dkr.ecr.${HUB.region}.amazonaws.com`;
  const ORDERS_KEY = `${ORDERS.account}.dkr.ecr.${ORDERS.region}.amazonaws.com/apps/orders-api`;
  const ORDERS_ROLE = 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1';
  const PAYMENTS_ROLE = 'arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1';

  const pushIn = (where: { account: string; region: string }, repository: string, digest: string): Record<string, unknown> => ({ ...pushEvent(repository, digest, '2.0'), account: where.account, region: where.region });
  /** The SDK client a mocked call was sent through (its region and credentials are what AWS would see). */
  const clientOf = (call: { thisValue: unknown }): { config: { region: () => Promise<string>; credentials: () => Promise<Record<string, unknown>> } } =>
    call.thisValue as { config: { region: () => Promise<string>; credentials: () => Promise<Record<string, unknown>> } };

  /** STS issues sessions valid 15 minutes from the test clock, each with its own key id. */
  function stsIssues(clock: { now: Date }): void {
    let issued = 0;
    sts.on(AssumeRoleCommand).callsFake(() => ({
      Credentials: { AccessKeyId: `ASIASPOKE${++issued}`, SecretAccessKey: 'secret', SessionToken: 'token', Expiration: new Date(clock.now.getTime() + 900_000) },
    }));
  }

  /** The handler with the organization's scope, the hub's ECR through the function's own client and the spokes' through the real AWS reader. */
  async function setupOrganization(clock = { now: NOW }) {
    const { deps, discovery } = await setup();
    const spokes = awsSpokeEcrImages({ now: () => clock.now });
    const orgDeps: LearnLineageDependencies = {
      ...deps,
      registryScope: RegistryScope.of({ hub: HUB, spokes: [PAYMENTS, ORDERS] }),
      learnLineage: { ...deps.learnLineage!, ecr: new SdkEcrImages({ client: new ECRClient({ region: HUB.region }) }), spokes },
    };
    return { handle: makeLearnLineageHandler(orgDeps), deps: orgDeps, discovery, clock };
  }

  it('reads a spoke push in the spoke registry through its hub-access role, assumed at the spoke region STS endpoint first', async () => {
    const { handle, deps, discovery } = await setupOrganization();
    stsIssues({ now: NOW });
    const digest = digestOf('orders spoke push');
    ecrHolds({ [digest]: manifest(based(`${HUB_REGISTRY}/enterprise/python-311@${PYTHON_DIGEST}`, PYTHON_DIGEST)) });
    repositoryTagged({ owner: 'orders-team' });

    const result = await handle(pushIn(ORDERS, 'apps/orders-api', digest));

    expect(result).toMatchObject({ image: ORDERS_KEY, outcome: LearnOutcome.LEARNED, change: 'added', parent: 'enterprise/python-311', parentDigest: PYTHON_DIGEST, owner: 'orders-team', ownerSource: 'repository-tag' });
    const assumed = sts.commandCalls(AssumeRoleCommand);
    expect(assumed.map((c) => c.args[0].input)).toEqual([{ RoleArn: ORDERS_ROLE, RoleSessionName: learnLineageSessionName('apps/orders-api', digest), DurationSeconds: 900 }]);
    expect(await clientOf(assumed[0]).config.region()).toBe(ORDERS.region);

    const reads = ecr.commandCalls(BatchGetImageCommand);
    expect(reads.map((c) => c.args[0].input)).toEqual([{ repositoryName: 'apps/orders-api', imageIds: [{ imageDigest: digest }], acceptedMediaTypes: [...ACCEPTED_MANIFEST_TYPES] }]);
    expect(assumed[0].calledBefore(reads[0])).toBe(true);
    // In the spoke's region, with the assumed session's credentials: the spoke's registry, not the hub's.
    expect(await clientOf(reads[0]).config.region()).toBe(ORDERS.region);
    expect(await clientOf(reads[0]).config.credentials()).toMatchObject({ accessKeyId: 'ASIASPOKE1', secretAccessKey: 'secret', sessionToken: 'token' });
    const tagReads = ecr.commandCalls(ListTagsForResourceCommand);
    expect(tagReads.map((c) => c.args[0].input)).toEqual([{ resourceArn: 'arn:aws:ecr:us-east-1:333333333333:repository/apps/orders-api' }]);
    expect(clientOf(tagReads[0])).toBe(clientOf(reads[0]));

    expect(await deps.lineage.getImage(ORDERS_KEY)).toMatchObject({ owner: 'orders-team', parents: [{ image: 'enterprise/python-311', role: 'runtime' }] });
    expect(await deps.lineage.getVersion(ORDERS_KEY, digest)).toMatchObject({ parentDigests: { 'enterprise/python-311': PYTHON_DIGEST } });
    expect(await discovery.get(ORDERS_KEY)).toMatchObject({ learned: { digest, change: 'added', parent: 'enterprise/python-311' } });
  });

  it('reads a hub push with the function own credentials in the hub region: no AssumeRole', async () => {
    const { handle } = await setupOrganization();
    const digest = digestOf('hub push');
    ecrHolds({ [digest]: manifest(based(`${HUB_REGISTRY}/enterprise/python-311@${PYTHON_DIGEST}`, PYTHON_DIGEST)) });
    repositoryTagged({ owner: 'payments-team' });

    const result = await handle(pushIn(HUB, 'apps/new-api', digest));

    expect(result).toMatchObject({ image: 'apps/new-api', outcome: LearnOutcome.LEARNED, parent: 'enterprise/python-311', owner: 'payments-team' });
    expect(sts.calls()).toHaveLength(0);
    const reads = [...ecr.commandCalls(BatchGetImageCommand), ...ecr.commandCalls(ListTagsForResourceCommand)];
    expect(reads.map((c) => c.args[0].input)).toEqual([
      { repositoryName: 'apps/new-api', imageIds: [{ imageDigest: digest }], acceptedMediaTypes: [...ACCEPTED_MANIFEST_TYPES] },
      { resourceArn: 'arn:aws:ecr:eu-west-1:111111111111:repository/apps/new-api' },
    ]);
    for (const read of reads) expect(await clientOf(read).config.region()).toBe(HUB.region);
  });

  it('keeps a spoke session per role and region while it is valid, and assumes again a minute before it expires', async () => {
    const clock = { now: NOW };
    const { handle } = await setupOrganization(clock);
    stsIssues(clock);
    const [first, second, payments, later] = ['o1', 'o2', 'p1', 'o3'].map((d) => digestOf(d));
    ecrHolds({ [first]: manifest(), [second]: manifest(), [payments]: manifest(), [later]: manifest() });
    ecr.on(GetDownloadUrlForLayerCommand).rejects(Object.assign(new Error('no layer'), { name: 'LayersNotFoundException' }));

    const push = (where: { account: string; region: string }, repository: string, digest: string) => handle(pushIn(where, repository, digest)).catch((e: Error) => e.name);
    await push(ORDERS, 'apps/orders-api', first);
    await push(ORDERS, 'apps/orders-api', second);
    await push(PAYMENTS, 'apps/payments-api', payments);
    clock.now = new Date(NOW.getTime() + 900_000 - 59_000);
    await push(ORDERS, 'apps/orders-api', later);

    expect(sts.commandCalls(AssumeRoleCommand).map((c) => [c.args[0].input.RoleArn, c.args[0].input.RoleSessionName])).toEqual([
      [ORDERS_ROLE, learnLineageSessionName('apps/orders-api', first)],
      [PAYMENTS_ROLE, learnLineageSessionName('apps/payments-api', payments)],
      [ORDERS_ROLE, learnLineageSessionName('apps/orders-api', later)],
    ]);
    const reads = ecr.commandCalls(BatchGetImageCommand);
    expect(await Promise.all(reads.map((c) => clientOf(c).config.region()))).toEqual(['us-east-1', 'us-east-1', 'eu-west-1', 'us-east-1']);
    expect(await Promise.all(reads.map(async (c) => (await clientOf(c).config.credentials()).accessKeyId))).toEqual(['ASIASPOKE1', 'ASIASPOKE1', 'ASIASPOKE2', 'ASIASPOKE3']);
  });

  it('refuses a push from an account that is not configured before assuming any role or reading any registry', async () => {
    const { handle } = await setupOrganization();
    await expect(handle(pushIn({ account: '444444444444', region: 'eu-west-1' }, 'apps/orders-api', digestOf('stranger')))).rejects.toThrow(UnconfiguredRegistryError);
    await expect(handle(pushIn({ account: ORDERS.account, region: 'ap-south-1' }, 'apps/orders-api', digestOf('wrong region')))).rejects.toThrow(UnconfiguredRegistryError);
    expect(sts.calls()).toHaveLength(0);
    expect(ecr.calls()).toHaveLength(0);
  });

  it('fails with SpokeRegistryAccessError naming the role when the spoke refuses the AssumeRole, reads nothing, records nothing and keeps no session', async () => {
    const { handle, discovery } = await setupOrganization();
    sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('User is not authorized to perform: sts:AssumeRole'), { name: 'AccessDenied' }));
    const digest = digestOf('refused');

    const failure = await handle(pushIn(ORDERS, 'apps/orders-api', digest)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SpokeRegistryAccessError);
    expect((failure as SpokeRegistryAccessError).message).toContain(`could not assume ${ORDERS_ROLE} in us-east-1`);
    expect((failure as SpokeRegistryAccessError).message).toContain('not authorized');
    expect((failure as SpokeRegistryAccessError).code).toBe('SPOKE_REGISTRY_ACCESS_DENIED');
    expect(ecr.calls()).toHaveLength(0);
    expect(await discovery.get(ORDERS_KEY)).toBeUndefined();

    await handle(pushIn(ORDERS, 'apps/orders-api', digest)).catch(() => undefined);
    expect(sts.commandCalls(AssumeRoleCommand)).toHaveLength(2);
  });

  it('reports a spoke push as not read when no spoke reader is configured, and assumes nothing', async () => {
    const { deps } = await setupOrganization();
    const { spokes: _omitted, ...hubOnly } = deps.learnLineage!;
    const result = await makeLearnLineageHandler({ ...deps, learnLineage: hubOnly })(pushIn(ORDERS, 'apps/orders-api', digestOf('unread')));
    expect(result).toMatchObject({ image: ORDERS_KEY, outcome: LearnOutcome.IMAGE_NOT_FOUND, reason: expect.stringContaining('no spoke reader is configured') });
    expect(sts.calls()).toHaveLength(0);
    expect(ecr.calls()).toHaveLength(0);
  });
});
