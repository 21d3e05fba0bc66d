import { readFileSync } from 'fs';
import { join } from 'path';
import { BuildRecord } from '../../../cli/local/local-aws';
import { localRemoteBuildsFor } from '../../../cli/local/local-remote-builds';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { CfnTemplate, synthesizeTemplate } from '../../../cli/local/synthesized-template';
import { parseConfig, PatchlineConfig } from '../../../lambdas/domain/config';
import { learnLineageSessionName } from '../../../lambdas/domain/learned-lineage';
import { BaseImageAnnotation, ManifestMediaType } from '../../../lambdas/domain/oci-base-image';
import { ImageNode } from '../../../lambdas/domain/lineage';
import { parseRegistryKey, registryHost } from '../../../lambdas/domain/registry-scope';
import { remoteBuildSessionName } from '../../../lambdas/domain/remote-build';
import { hubAccessRoleName } from '../../../lib/spoke-stack';
import { digestOf, pushEvent, REPO_ROOT } from '../../support/template';

const HUB = { account: '111111111111', region: 'eu-west-1' };
const PAYMENTS = { account: '222222222222', region: 'eu-west-1' };
const ORDERS_SAME_REGION = { account: '333333333333', region: 'eu-west-1' };

/** The shipped example: a hub and two team accounts, the orders account in a second region (us-east-1). */
function exampleConfig(): PatchlineConfig {
  return parseConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')));
}

/** The example with the orders account moved into the hub's region: both team accounts reachable. */
function sameRegionConfig(): PatchlineConfig {
  const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'examples/organization.config.json'), 'utf8')) as { organization: { spokes: Array<{ region: string }> } };
  raw.organization.spokes[1].region = ORDERS_SAME_REGION.region;
  return parseConfig(raw);
}

const key = (where: { account: string; region: string }, repository: string): string => `${registryHost(where.account, where.region)}/${repository}`;

/** One lineage across three accounts: the platform (hub) account's enterprise image under images of two team accounts. */
function lineage(orders: { account: string; region: string }): ImageNode[] {
  const image = (name: string, parents: string[], owner: string, project: string): ImageNode => ({
    image: name,
    tier: 'application',
    owner,
    parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
    build: { project },
  });
  return [
    { ...image('enterprise/python-311', ['registry.access.redhat.com/ubi9/python-311:1-34'], 'platform-team', 'enterprise-python-311'), tier: 'enterprise' },
    { ...image('builders/python-ci', ['enterprise/python-311'], 'build-tools', 'builders-python-ci'), tier: 'builder' },
    image(key(PAYMENTS, 'apps/payments-api'), ['enterprise/python-311'], 'payments-team', 'apps-payments-api'),
    // Below a team image, in the same team account: its push comes back from that account, over the hub bus.
    image(key(PAYMENTS, 'apps/payments-worker'), [key(PAYMENTS, 'apps/payments-api')], 'payments-team', 'apps-payments-worker'),
    image(key(orders, 'apps/orders-api'), ['enterprise/python-311'], 'orders-team', 'apps-orders-api'),
  ];
}

/** A push as ECR emits it in `where` (the real sample, with the account and region of the pushing registry). */
function pushIn(where: { account: string; region: string }, repository: string, digest: string): Record<string, unknown> {
  return { ...pushEvent(repository, digest), account: where.account, region: where.region };
}

async function run(config: PatchlineConfig, template: CfnTemplate, images: ImageNode[], events: unknown[]): Promise<LocalRuntime> {
  const runtime = await LocalRuntime.start({ config, lineage: images, template });
  for (const event of events) runtime.send(event);
  await runtime.runUntilQuiet();
  return runtime;
}

const byImage = (builds: readonly BuildRecord[]): Map<string, BuildRecord> => new Map(builds.map((b) => [b.image, b]));

describe('Class: LocalRuntime (organization)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  describe('Method: runUntilQuiet', () => {
    const config = sameRegionConfig();
    let template: CfnTemplate;
    beforeAll(() => {
      template = synthesizeTemplate(config);
    });

    it('rebuilds the team images of both accounts from a push of the platform image, each through its own account role', async () => {
      const digest = digestOf('platform-enterprise-1');
      runtime = await run(config, template, lineage(ORDERS_SAME_REGION), [pushIn(HUB, 'enterprise/python-311', digest)]);
      const builds = byImage(runtime.codebuild.builds);
      expect([...builds.keys()].sort()).toEqual(
        ['builders/python-ci', key(PAYMENTS, 'apps/payments-api'), key(PAYMENTS, 'apps/payments-worker'), key(ORDERS_SAME_REGION, 'apps/orders-api')].sort(),
      );
      for (const build of builds.values()) {
        expect(build.status).toBe('SUCCEEDED');
        const owner = parseRegistryKey(build.image);
        if (owner) {
          // Started through the spoke stack's own role in the account that owns the image, and pushed there.
          expect(build.roleArn).toBe(`arn:aws:iam::${owner.account}:role/${hubAccessRoleName(owner.region)}`);
          expect(build.registry).toEqual({ account: owner.account, region: owner.region });
        } else {
          expect(build.roleArn).toBeUndefined();
          expect(build.registry).toBeUndefined();
        }
      }
      expect(new Set([...builds.values()].map((b) => b.roleArn?.split(':')[4]).filter(Boolean))).toEqual(new Set([PAYMENTS.account, ORDERS_SAME_REGION.account]));

      // The team images build FROM the platform account's registry; the worker FROM its team parent's fresh digest.
      const platformPin = `${registryHost(HUB.account, HUB.region)}/enterprise/python-311@${digest}`;
      expect(builds.get(key(PAYMENTS, 'apps/payments-api'))!.baseImage).toBe(platformPin);
      expect(builds.get(key(ORDERS_SAME_REGION, 'apps/orders-api'))!.baseImage).toBe(platformPin);
      expect(builds.get(key(PAYMENTS, 'apps/payments-worker'))!.baseImage).toBe(`${key(PAYMENTS, 'apps/payments-api')}@${builds.get(key(PAYMENTS, 'apps/payments-api'))!.pushedDigest}`);
      expect(new Set([...builds.values()].map((b) => b.campaign)).size).toBe(1);

      // The team accounts' pushes arrived on the hub bus and were taken by its rule, not the default bus's.
      const teamPushes = runtime.routed.filter((r) => [PAYMENTS.account, ORDERS_SAME_REGION.account].includes((r.event as { account: string }).account));
      expect(teamPushes).toHaveLength(3);
      for (const routed of teamPushes) {
        expect(routed.rules).toHaveLength(1);
        expect(routed.rules[0]).toMatch(/^HubEventBusHubEcrPushRule/);
      }
      // The spoke executions went through StartBuildInSpoke, the hub's through StartBuild, never both.
      const rebuilds = runtime.stepFunctions.allExecutions.filter((e) => e.stateMachine.endsWith('rebuild-image'));
      expect(rebuilds).toHaveLength(4);
      for (const execution of rebuilds) {
        const inSpoke = typeof (execution.input as { buildRoleArn?: unknown }).buildRoleArn === 'string';
        expect(execution.status).toBe('SUCCEEDED');
        expect(execution.states.includes('StartBuildInSpoke')).toBe(inSpoke);
        expect(execution.states.includes('StartBuild')).toBe(!inSpoke);
      }
      expect(runtime.result().deadLetters).toEqual([]);
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
      expect(runtime.stepFunctions.pendingTokens).toBe(0);
    });

    it('takes a team account push as a root of its own: only that account images below it are rebuilt', async () => {
      runtime = await run(config, template, lineage(ORDERS_SAME_REGION), [pushIn(PAYMENTS, 'apps/payments-api', digestOf('team-payments-1'))]);
      expect(runtime.codebuild.builds.map((b) => [b.image, b.roleArn])).toEqual([[key(PAYMENTS, 'apps/payments-worker'), `arn:aws:iam::${PAYMENTS.account}:role/${hubAccessRoleName(PAYMENTS.region)}`]]);
      expect(runtime.codebuild.builds[0].baseImage).toBe(`${key(PAYMENTS, 'apps/payments-api')}@${digestOf('team-payments-1')}`);
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });

    it('refuses a push from an account that is not configured: dead-lettered with the reason, nothing recorded or built', async () => {
      const stranger = { account: '444444444444', region: 'eu-west-1' };
      runtime = await run(config, template, lineage(ORDERS_SAME_REGION), [pushIn(stranger, 'apps/payments-api', digestOf('stranger-1'))]);
      expect(runtime.codebuild.builds).toEqual([]);
      const letters = runtime.result().deadLetters;
      expect(letters).toHaveLength(1);
      expect(letters[0].reason).toContain('444444444444');
      expect(letters[0].reason).toContain('neither the hub nor a configured spoke');
      expect((letters[0].event as { account: string }).account).toBe(stranger.account);
      expect(await runtime.deps.lineage.currentVersion('apps/payments-api')).toBeUndefined();
      expect(await runtime.deps.lineage.currentVersion(key(stranger, 'apps/payments-api'))).toBeUndefined();
      // Refused before learn-lineage assumed any role or read any registry.
      expect(runtime.calls.filter((c) => c.service === 'sts' || c.service === 'ecr')).toEqual([]);
    });

    it('refuses a push of a configured account from a region it is not configured in', async () => {
      runtime = await run(config, template, lineage(ORDERS_SAME_REGION), [pushIn({ account: PAYMENTS.account, region: 'ap-south-1' }, 'apps/payments-api', digestOf('wrong-region-1'))]);
      expect(runtime.codebuild.builds).toEqual([]);
      expect(runtime.result().deadLetters.map((d) => d.reason).join('\n')).toContain(`account ${PAYMENTS.account} in ap-south-1`);
    });
  });

  describe('Method: runUntilQuiet (a spoke in another region)', () => {
    const orders = { account: '333333333333', region: 'us-east-1' };
    const ordersRole = `arn:aws:iam::${orders.account}:role/${hubAccessRoleName(orders.region)}`;

    it('rebuilds the image of the spoke outside the hub region through its own role in that region, resumed by the forwarded build end', async () => {
      const config = exampleConfig();
      const digest = digestOf('platform-enterprise-2');
      runtime = await run(config, synthesizeTemplate(config), lineage(orders), [pushIn(HUB, 'enterprise/python-311', digest)]);
      const builds = byImage(runtime.codebuild.builds);
      expect([...builds.keys()].sort()).toEqual(['builders/python-ci', key(PAYMENTS, 'apps/payments-api'), key(PAYMENTS, 'apps/payments-worker'), key(orders, 'apps/orders-api')].sort());
      const remote = builds.get(key(orders, 'apps/orders-api'))!;
      expect(remote.status).toBe('SUCCEEDED');
      // start-remote-build assumed the us-east-1 role and called CodeBuild in us-east-1; the build pushed there.
      expect(remote.roleArn).toBe(ordersRole);
      expect(remote.buildRegion).toBe(orders.region);
      expect(remote.registry).toEqual(orders);
      expect(remote.baseImage).toBe(`${registryHost(HUB.account, HUB.region)}/enterprise/python-311@${digest}`);
      for (const build of builds.values()) if (build !== remote) expect(build.buildRegion).toBeUndefined();

      // Its execution went through StartRemoteBuild only; the others never did.
      const rebuilds = runtime.stepFunctions.allExecutions.filter((e) => e.stateMachine.endsWith('rebuild-image'));
      expect(rebuilds).toHaveLength(4);
      for (const execution of rebuilds) {
        const remoteRun = (execution.input as { image?: unknown }).image === key(orders, 'apps/orders-api');
        expect(execution.status).toBe('SUCCEEDED');
        expect(execution.states.includes('StartRemoteBuild')).toBe(remoteRun);
        expect(execution.states.includes('StartBuildInSpoke') || execution.states.includes('StartBuild')).toBe(!remoteRun);
      }

      // The spoke's push and its build end both came over the hub bus, each taken by its hub-bus rule.
      const fromOrders = runtime.routed.filter((r) => (r.event as { account: string }).account === orders.account);
      expect(fromOrders.map((r) => [(r.event as { 'detail-type': string })['detail-type'], r.rules.length])).toEqual([
        ['ECR Image Action', 1],
        ['CodeBuild Build State Change', 1],
      ]);
      expect(fromOrders[0].rules[0]).toMatch(/^HubEventBusHubEcrPushRule/);
      expect(fromOrders[1].rules[0]).toMatch(/^HubCodeBuildEndedRule/);

      const campaign = remote.campaign;
      const member = (await runtime.deps.campaigns.memberStates(campaign, [key(orders, 'apps/orders-api')])).get(key(orders, 'apps/orders-api'));
      expect(member?.state).not.toBe('skipped');
      expect(runtime.result().deadLetters).toEqual([]);
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
      expect(runtime.stepFunctions.pendingTokens).toBe(0);
      // The build ended normally: its execution's lookup went with its token, and nothing was stopped.
      const ordersExecution = rebuilds.find((e) => (e.input as { image?: unknown }).image === key(orders, 'apps/orders-api'))!;
      expect(await localRemoteBuildsFor(runtime.deps).tokens.forExecution(ordersExecution.name, new Date())).toBeUndefined();
      expect(runtime.calls.filter((c) => c.action === 'StopBuild')).toEqual([]);
    });

    it('stops the remote build of a rebuild aborted while parked on it: the build ends STOPPED, unpushed, and its token is gone', async () => {
      const config = exampleConfig();
      const image = key(orders, 'apps/orders-api');
      // The orders build runs long enough to be stopped; the others end at once.
      runtime = await LocalRuntime.start({ config, lineage: lineage(orders), template: synthesizeTemplate(config), builds: { projectBuildMillis: new Map([['apps-orders-api', 60_000]]) } });
      const { tokens } = localRemoteBuildsFor(runtime.deps);
      runtime.send(pushIn(HUB, 'enterprise/python-311', digestOf('platform-enterprise-4')));
      const quiet = runtime.runUntilQuiet();
      const parkedExecution = async (): Promise<{ arn: string; name: string; buildArn: string }> => {
        for (let i = 0; i < 2400; i++) {
          const execution = runtime!.stepFunctions.allExecutions.find((e) => (e.input as { image?: unknown }).image === image && e.status === 'RUNNING');
          const build = execution && (await tokens.forExecution(execution.name, new Date()));
          // start-remote-build writes the execution's lookup first, then the build's token: parked once both are there.
          const token = build && (await tokens.get(build.buildArn, new Date()));
          if (execution && build && token) return { arn: execution.arn, name: execution.name, buildArn: build.buildArn };
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        throw new Error('the orders rebuild never parked on its remote build');
      };
      const parked = await parkedExecution();
      expect(await tokens.get(parked.buildArn, new Date())).toBeDefined();
      expect(runtime.stepFunctions.stopExecution(parked.arn)).toBe(true);
      await quiet;

      const execution = runtime.stepFunctions.allExecutions.find((e) => e.arn === parked.arn)!;
      expect(execution.status).toBe('ABORTED');
      // Aborted where it was parked: no Catch path ran (release-slot and stop-remote-build work from its end event).
      expect(execution.states.at(-1)).toBe('StartRemoteBuild');
      // StopBuild went to us-east-1 through the orders role, for the parked build.
      const buildId = parked.buildArn.split(':build/')[1];
      expect(runtime.calls.filter((c) => c.action === 'StopBuild').map((c) => [c.parameters, c.outcome])).toEqual([
        [{ Id: buildId, Credentials: { RoleArn: ordersRole, RoleSessionName: remoteBuildSessionName(parked.name) }, Region: orders.region }, 'STOPPED'],
      ]);
      const remote = byImage(runtime.codebuild.builds).get(image)!;
      expect(remote.status).toBe('STOPPED');
      expect(remote.pushedDigest).toBeUndefined();
      // The spoke sent no push, only the build's STOPPED end, which resumed nothing: the token was gone.
      const fromOrders = runtime.routed.filter((r) => (r.event as { account: string }).account === orders.account);
      expect(fromOrders.map((r) => [(r.event as { 'detail-type': string })['detail-type'], (r.event as { detail: Record<string, unknown> }).detail['build-status']])).toEqual([
        ['CodeBuild Build State Change', 'STOPPED'],
      ]);
      expect(await tokens.get(parked.buildArn, new Date())).toBeUndefined();
      expect(await tokens.forExecution(parked.name, new Date())).toBeUndefined();
      const member = (await runtime.deps.campaigns.memberStates(remote.campaign, [image])).get(image);
      expect(member?.stoppedBuild).toEqual(expect.objectContaining({ buildId, reason: `remote build ${buildId} stopped: rebuild execution ${parked.name} ended ABORTED` }));
      // release-slot, on the same rule, returned the slot.
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
      expect(runtime.stepFunctions.pendingTokens).toBe(0);
      expect(runtime.result().deadLetters).toEqual([]);
    });

    it('fails the remote rebuild when its build fails: the same failure path records it and returns the slot', async () => {
      const config = exampleConfig();
      runtime = await LocalRuntime.start({ config, lineage: lineage(orders), template: synthesizeTemplate(config), builds: { failProjects: new Set(['apps-orders-api']) } });
      runtime.send(pushIn(HUB, 'enterprise/python-311', digestOf('platform-enterprise-3')));
      await runtime.runUntilQuiet();
      const remote = byImage(runtime.codebuild.builds).get(key(orders, 'apps/orders-api'))!;
      expect(remote.status).toBe('FAILED');
      expect(remote.roleArn).toBe(ordersRole);
      const execution = runtime.stepFunctions.allExecutions.find((e) => (e.input as { image?: unknown }).image === key(orders, 'apps/orders-api'))!;
      expect(execution.status).toBe('FAILED');
      expect(execution.states).toEqual(expect.arrayContaining(['StartRemoteBuild', 'ReleaseSlotAfterFailure', 'RecordBuildFailure', 'BuildFailed']));
      const member = (await runtime.deps.campaigns.memberStates(remote.campaign, [key(orders, 'apps/orders-api')])).get(key(orders, 'apps/orders-api'));
      expect(member?.state).toBe('failed');
      expect(member?.reason).toContain('FAILED');
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
      expect(runtime.stepFunctions.pendingTokens).toBe(0);
    });
  });

  describe('Method: runUntilQuiet (learn-lineage reads the spoke registries)', () => {
    const orders = { account: '333333333333', region: 'us-east-1' };
    const ordersRole = `arn:aws:iam::${orders.account}:role/${hubAccessRoleName(orders.region)}`;
    const ORDERS_REGISTRY = `${orders.account}/${orders.region}`;
    type Recorded = { Registry?: string; Credentials?: { RoleArn?: string; RoleSessionName?: string }; Region?: string; resourceArn?: string };

    const learnedOutputs = (r: LocalRuntime): Array<Record<string, unknown>> =>
      r.stepFunctions.allExecutions.filter((e) => e.stateMachine.includes('ImagePushed')).map((e) => (e.output as { learned?: Record<string, unknown> } | undefined)?.learned ?? {});

    it('learns a spoke push from that spoke registry through its hub-access role, and keeps the session for the rebuild push', async () => {
      const config = exampleConfig();
      runtime = await LocalRuntime.start({ config, lineage: lineage(orders), template: synthesizeTemplate(config) });
      const api = digestOf('orders-api 1');
      const worker = digestOf('orders-worker 1');
      const registry = runtime.spokeRegistries.registry(orders);
      registry.putImage('apps/orders-worker', worker, {
        manifest: {
          schemaVersion: 2,
          mediaType: ManifestMediaType.OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('config'), size: 2 },
          layers: [],
          annotations: { [BaseImageAnnotation.NAME]: `${key(orders, 'apps/orders-api')}@${api}`, [BaseImageAnnotation.DIGEST]: api },
        },
      });
      registry.tagRepository('apps/orders-worker', { owner: 'orders-team', 'build-project': 'apps-orders-worker' });

      runtime.send(pushIn(orders, 'apps/orders-worker', worker));
      await runtime.runUntilQuiet();

      expect(learnedOutputs(runtime)).toEqual([expect.objectContaining({ image: key(orders, 'apps/orders-worker'), outcome: 'learned', parent: key(orders, 'apps/orders-api'), parentDigest: api, owner: 'orders-team' })]);
      expect(await runtime.deps.lineage.getImage(key(orders, 'apps/orders-worker'))).toMatchObject({
        owner: 'orders-team',
        parents: [{ image: key(orders, 'apps/orders-api'), role: 'runtime' }],
        build: { project: 'apps-orders-worker' },
      });
      // One AssumeRole of the orders role at the us-east-1 endpoint, then every read in the orders registry with it.
      const reads = runtime.calls.filter((c) => c.service === 'sts' || c.service === 'ecr');
      expect(reads.map((c) => [c.service, c.action])).toEqual([
        ['sts', 'AssumeRole'],
        ['ecr', 'BatchGetImage'],
        ['ecr', 'ListTagsForResource'],
      ]);
      const session = learnLineageSessionName('apps/orders-worker', worker);
      expect(reads[0].parameters).toEqual({ RoleArn: ordersRole, RoleSessionName: session, DurationSeconds: 900, Region: orders.region });
      for (const read of reads.slice(1)) {
        expect(read.parameters).toMatchObject({ Registry: ORDERS_REGISTRY, Credentials: { RoleArn: ordersRole, RoleSessionName: session }, Region: orders.region });
      }
      expect((reads[2].parameters as Recorded).resourceArn).toBe(`arn:aws:ecr:us-east-1:${orders.account}:repository/apps/orders-worker`);

      // A push of its parent in the same spoke rebuilds it there; the rebuild's push is read through the same session.
      const api2 = digestOf('orders-api 2');
      runtime.send(pushIn(orders, 'apps/orders-api', api2));
      await runtime.runUntilQuiet();
      const builds = runtime.codebuild.builds;
      expect(builds.map((b) => [b.image, b.roleArn, b.buildRegion, b.status])).toEqual([[key(orders, 'apps/orders-worker'), ordersRole, orders.region, 'SUCCEEDED']]);
      expect(learnedOutputs(runtime).find((l) => l.digest === builds[0].pushedDigest)).toMatchObject({ image: key(orders, 'apps/orders-worker'), outcome: 'unchanged', parent: key(orders, 'apps/orders-api'), parentDigest: api2 });
      expect(runtime.calls.filter((c) => c.service === 'sts')).toHaveLength(1);
      // Nothing was read in the hub's registry: every ECR call went to the orders registry as the orders role.
      expect(runtime.calls.filter((c) => c.service === 'ecr').every((c) => (c.parameters as Recorded).Registry === ORDERS_REGISTRY && (c.parameters as Recorded).Credentials?.RoleArn === ordersRole)).toBe(true);
      expect(runtime.result().deadLetters).toEqual([]);
      expect(await runtime.semaphoreState()).toEqual({ inUse: 0, holders: [], waiters: 0 });
    });

    it('reads a hub push in the hub registry without assuming any role', async () => {
      const config = exampleConfig();
      runtime = await LocalRuntime.start({ config, lineage: lineage(orders), template: synthesizeTemplate(config) });
      const digest = digestOf('builders 1');
      runtime.ecr.putImage('builders/python-ci', digest, { manifest: { schemaVersion: 2, mediaType: ManifestMediaType.OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('c'), size: 2 }, layers: [], annotations: { [BaseImageAnnotation.NAME]: `${registryHost(HUB.account, HUB.region)}/enterprise/python-311@${digestOf('py')}`, [BaseImageAnnotation.DIGEST]: digestOf('py') } } });

      runtime.send(pushIn(HUB, 'builders/python-ci', digest));
      await runtime.runUntilQuiet();

      expect(learnedOutputs(runtime)).toEqual([expect.objectContaining({ image: 'builders/python-ci', outcome: 'unchanged', parent: 'enterprise/python-311' })]);
      expect(runtime.calls.filter((c) => c.service === 'sts')).toEqual([]);
      expect(runtime.calls.filter((c) => c.service === 'ecr').map((c) => [c.action, (c.parameters as Recorded).Registry])).toEqual([['BatchGetImage', undefined]]);
    });
  });
});
