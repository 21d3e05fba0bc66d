import { DeleteItemCommand, DynamoDBServiceException, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { createHash } from 'crypto';
import { PatchlineConfig } from '../../lambdas/domain/config';
import { ImageNode } from '../../lambdas/domain/lineage';
import { makeAcquireSlotHandler } from '../../lambdas/handlers/acquire-slot';
import { HandlerDependencies, RebuildStarter, tableStores } from '../../lambdas/handlers/dependencies';
import { imagePushedDependencies, makeImagePushedHandler } from '../../lambdas/handlers/image-pushed';
import { learnLineageDependencies, makeLearnLineageHandler } from '../../lambdas/handlers/learn-lineage';
import { findingReceivedDependencies, makeFindingReceivedHandler } from '../../lambdas/handlers/finding-received';
import { makeRecordBuildFailureHandler } from '../../lambdas/handlers/record-build-failure';
import { makeReleaseSlotHandler } from '../../lambdas/handlers/release-slot';
import { makeReleaseAlertClaimHandler } from '../../lambdas/handlers/release-alert-claim';
import { makeRegistryRescanHandler } from '../../lambdas/handlers/registry-rescan';
import { makeUpstreamWatchHandler } from '../../lambdas/handlers/upstream-watch';
import { makeResolveSettledRebuildHandler } from '../../lambdas/handlers/resolve-settled-rebuild';
import { makeScanCompletedHandler } from '../../lambdas/handlers/scan-completed';
import { makeRemoteBuildEndedHandler } from '../../lambdas/handlers/remote-build-ended';
import { makeStartRemoteBuildHandler } from '../../lambdas/handlers/start-remote-build';
import { makeStopRemoteBuildHandler } from '../../lambdas/handlers/stop-remote-build';
import { SemaphoreState } from '../../lambdas/store/semaphore-store';
import { PATCHLINE_HANDLER_METADATA } from '../../lib/patchline-function';
import { WorkflowId } from '../../lib/patchline-stack';
import { createPatchlineTable, DynamoDbEmulator, startDynamoDbEmulator } from './dynamodb-emulator';
import { matchesEventPattern } from './event-pattern';
import { BuildBehaviour, BuildRecord, DeadLetter, LocalCodeBuild, LocalDeadLetterQueue, LocalSns, RecordedCall } from './local-aws';
import { LocalEcr } from './local-ecr';
import { DEFAULT_EVENT_BUS, eventBusOf, ruleEventBus } from './local-event-buses';
import { LocalMetrics } from './local-metrics';
import { bindLocalRemoteBuilds, localRemoteBuildsFor } from './local-remote-builds';
import { bindLocalScanners, localScannersFor } from './local-scanners';
import { LocalSpokeRegistries } from './local-spoke-registries';
import { ExecutionAlreadyExistsError, ExecutionRecord, LocalStepFunctions, TaskContext } from './local-step-functions';
import { CfnTemplate, LOCAL_ACCOUNT, LOCAL_REGION, synthesizeTemplate, TemplateResolver } from './synthesized-template';
import { withTaskCredentials } from './task-credentials';

type LambdaHandler = (event: unknown) => Promise<unknown>;

/** Handler file name (the function's `patchline:handler` metadata) → its factory. */
const HANDLER_FACTORIES: Record<string, (deps: HandlerDependencies) => LambdaHandler> = {
  'image-pushed': makeImagePushedHandler,
  'acquire-slot': makeAcquireSlotHandler,
  'release-slot': makeReleaseSlotHandler,
  'record-build-failure': makeRecordBuildFailureHandler,
  'finding-received': makeFindingReceivedHandler,
  'release-alert-claim': makeReleaseAlertClaimHandler,
  'registry-rescan': (deps) => makeRegistryRescanHandler(deps, localScannersFor(deps)),
  'upstream-watch': (deps) => makeUpstreamWatchHandler(deps, localScannersFor(deps)),
  'resolve-settled-rebuild': makeResolveSettledRebuildHandler,
  'scan-completed': makeScanCompletedHandler,
  'learn-lineage': makeLearnLineageHandler,
  'start-remote-build': (deps) => makeStartRemoteBuildHandler(deps, localRemoteBuildsFor(deps)),
  'remote-build-ended': (deps) => makeRemoteBuildEndedHandler(deps, localRemoteBuildsFor(deps)),
  'stop-remote-build': (deps) => makeStopRemoteBuildHandler(deps, localRemoteBuildsFor(deps)),
};

export interface LocalRuntimeOptions {
  readonly config: PatchlineConfig;
  readonly lineage: readonly ImageNode[];
  readonly builds?: BuildBehaviour;
  /** A template synthesized earlier (tests reuse one); @default synthesized now from `config` */
  readonly template?: CfnTemplate;
}

interface LocalRule {
  readonly name: string;
  readonly pattern: Record<string, unknown>;
  readonly targets: string[];
  /** The event bus the rule listens on (the default bus, or the hub bus spokes forward to). */
  readonly bus: string;
}

export interface RoutedEvent {
  readonly at: string;
  readonly event: unknown;
  readonly rules: string[];
}

export interface SimulationResult {
  readonly builds: Array<{ image: string; baseImage: string; campaign: string; project: string; status: string; buildId: string }>;
  readonly alerts: Array<{ owner: string; kind: string; image: string; vulnerability: string }>;
  readonly executions: Array<{ stateMachine: string; name: string; status: string; error?: string }>;
  readonly deadLetters: Array<{ reason: string; event: unknown }>;
}

export class LocalRuntimeStuckError extends Error {
  public readonly code = 'LOCAL_RUNTIME_STUCK';
  public constructor(parked: number) {
    super(`${parked} execution(s) are parked on task tokens and nothing else is running: a slot was never released`);
    this.name = 'LocalRuntimeStuckError';
  }
}

/**
 * The whole of Patchline on one machine: the synthesized template's state machines run by aws-local-stepfunctions,
 * its EventBridge rules matched by a local router, DynamoDB in dynalite, and recording stand-ins for CodeBuild, SNS
 * and SQS. A local build pushes a new digest that re-enters the router, so cascades happen for real.
 */
export class LocalRuntime {
  public readonly calls: RecordedCall[] = [];
  public readonly routed: RoutedEvent[] = [];
  public readonly codebuild: LocalCodeBuild;
  public readonly ecr: LocalEcr;
  /** The spokes' registries (a spoke build pushes into its own) and the STS learn-lineage reads them through. */
  public readonly spokeRegistries: LocalSpokeRegistries;
  public readonly sns: LocalSns;
  public readonly deadLetters: LocalDeadLetterQueue;
  public readonly stepFunctions: LocalStepFunctions;
  public readonly deps: HandlerDependencies;
  /** What the handlers counted (never printed: the CLI's JSON is on stdout). */
  public readonly metrics = new LocalMetrics();
  private readonly queue: unknown[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly rules: LocalRule[];
  private readonly lambdas = new Map<string, LambdaHandler>();
  private readonly resolver: TemplateResolver;
  private account = LOCAL_ACCOUNT;
  /** Hub and spokes, when configured: events of other accounts arrive on the hub bus. */
  private readonly organization: PatchlineConfig['organization'];
  private hubBus = DEFAULT_EVENT_BUS;
  private activeInvocations = 0;
  private region = LOCAL_REGION;

  private constructor(
    private readonly dynamo: DynamoDbEmulator,
    tableName: string,
    template: CfnTemplate,
    options: LocalRuntimeOptions,
  ) {
    this.resolver = new TemplateResolver(template, tableName);
    this.sns = new LocalSns(this.calls);
    this.deadLetters = new LocalDeadLetterQueue(this.calls);
    this.ecr = new LocalEcr(this.calls);
    this.spokeRegistries = new LocalSpokeRegistries(this.calls);
    this.codebuild = new LocalCodeBuild(this.calls, (repository, digest, tag, baseImage, registry) => {
      // LocalEcr is the hub's registry: a spoke build pushes into the spoke's own (read through its hub-access role).
      (registry ? this.spokeRegistries.registry(registry) : this.ecr).recordBuild(repository, digest, baseImage);
      this.send(this.pushEvent(repository, digest, tag, registry));
    }, options.builds);
    this.organization = options.config.organization;
    if (this.organization) ({ account: this.account, region: this.region } = this.organization.hub);
    this.stepFunctions = new LocalStepFunctions((task, input) => this.dispatch(task, input));
    const client = dynamo.client;
    this.deps = {
      ...tableStores({ client, tableName, concurrency: options.config.rebuild.concurrency }),
      taskTokens: {
        succeed: async (token, output) => this.stepFunctions.sendTaskSuccess(token, output),
        fail: async (token, error, cause) => this.stepFunctions.sendTaskFailure(token, error, cause),
      },
      defaultBuildSeconds: options.config.rebuild.defaultBuildSeconds,
      settleWindowSeconds: options.config.rebuild.settleWindowSeconds,
      now: () => new Date(),
      metrics: this.metrics,
      rebuilds: this.rebuildStarter(template),
      ...findingReceivedDependencies({ client, tableName, config: options.config }),
      ...imagePushedDependencies(options.config.organization),
      ...learnLineageDependencies({ client, tableName, ecr: this.ecr, spokes: this.spokeRegistries.reader, ...options.config.discovery, knownOwners: Object.keys(options.config.owners), buildProjects: options.config.rebuild.projects }),
    };
    bindLocalScanners(this.deps, { client, tableName, config: options.config, calls: this.calls });
    bindLocalRemoteBuilds(this.deps, { client, tableName, codebuild: this.codebuild, track: (work) => this.track(work), emit: (event) => this.send(event) });
    for (const [logicalId, resource] of Object.entries(template.Resources)) {
      if (resource.Type === 'AWS::Lambda::Function') {
        const handlerName = resource.Metadata?.[PATCHLINE_HANDLER_METADATA] as string | undefined;
        const factory = handlerName ? HANDLER_FACTORIES[handlerName] : undefined;
        if (factory) this.lambdas.set(this.resolver.getAtt(logicalId, 'Arn'), factory(this.deps));
      }
      if (resource.Type === 'AWS::StepFunctions::StateMachine') {
        const props = resource.Properties ?? {};
        this.stepFunctions.register({
          name: this.resolver.stateMachineName(logicalId),
          arn: this.resolver.stateMachineArn(logicalId),
          type: props.StateMachineType === 'EXPRESS' ? 'EXPRESS' : 'STANDARD',
          definition: withTaskCredentials(JSON.parse(String(this.resolver.resolve(props.DefinitionString))) as Record<string, unknown>),
        });
      }
    }
    this.rules = Object.entries(template.Resources)
      .filter(([, r]) => r.Type === 'AWS::Events::Rule')
      .map(([logicalId, r]) => ({
        name: logicalId,
        pattern: this.resolver.resolve(r.Properties?.EventPattern) as Record<string, unknown>,
        targets: ((r.Properties?.Targets as Array<{ Arn: unknown }>) ?? []).map((t) => String(this.resolver.resolve(t.Arn))),
        bus: ruleEventBus(template, r),
      }));
    this.hubBus = this.rules.find((r) => r.bus !== DEFAULT_EVENT_BUS)?.bus ?? DEFAULT_EVENT_BUS;
    this.stepFunctions.onExecutionEnded((execution) => this.send(this.statusChangeEvent(execution)));
  }

  public static async start(options: LocalRuntimeOptions): Promise<LocalRuntime> {
    const template = options.template ?? synthesizeTemplate(options.config);
    const dynamo = await startDynamoDbEmulator();
    const tableName = 'patchline-local';
    await createPatchlineTable(dynamo.client, tableName);
    const runtime = new LocalRuntime(dynamo, tableName, template, options);
    if (options.lineage.length > 0) await runtime.deps.lineage.putImages(options.lineage);
    return runtime;
  }

  /** Puts an event on the local bus (it is routed by `runUntilQuiet`). */
  public send(event: unknown): void {
    const detail = (event as { account?: unknown; region?: unknown }) ?? {};
    if (this.routed.length === 0 && this.queue.length === 0 && !this.organization) {
      // Builds "push" into the account and region the first event came from.
      if (typeof detail.account === 'string' && /^\d{12}$/.test(detail.account)) this.account = detail.account;
      if (typeof detail.region === 'string' && /^[a-z]{2}(-[a-z]+)+-\d$/.test(detail.region)) this.region = detail.region;
    }
    this.queue.push(event);
  }

  /** Routes events and runs executions until nothing is left to do. */
  public async runUntilQuiet(): Promise<void> {
    for (;;) {
      while (this.queue.length > 0) this.route(this.queue.shift());
      if (this.inFlight.size === 0 && !this.stepFunctions.busy) return;
      if (this.parkedOnly()) {
        // Give timers (simulated builds) a chance before declaring a leak.
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (this.parkedOnly()) {
          throw new LocalRuntimeStuckError(this.stepFunctions.pendingTokens);
        }
        continue;
      }
      await Promise.race([...this.inFlight, this.stepFunctions.nextSettled(), new Promise((resolve) => setTimeout(resolve, 20))]);
    }
  }

  public async semaphoreState(): Promise<SemaphoreState> {
    return this.deps.semaphore.state();
  }

  public result(): SimulationResult {
    return {
      builds: this.codebuild.builds.map((b: BuildRecord) => ({
        image: b.image,
        baseImage: b.baseImage,
        campaign: b.campaign,
        project: b.project,
        status: b.status,
        buildId: b.buildId,
      })),
      alerts: this.sns.published.map((m) => ({
        owner: m.attributes.owner ?? '',
        kind: m.attributes.kind ?? '',
        image: m.attributes.image ?? '',
        vulnerability: m.attributes.vulnerability ?? '',
      })),
      executions: this.stepFunctions.allExecutions.map((e: ExecutionRecord) => ({
        stateMachine: e.stateMachine,
        name: e.name,
        status: e.status,
        ...(e.error ? { error: `${e.error.Error}: ${e.error.Cause}`.slice(0, 500) } : {}),
      })),
      deadLetters: this.deadLetters.messages.map((d: DeadLetter) => ({ reason: d.reason, event: d.event })),
    };
  }

  /** Everything that happened, for .patchline/trace.json. */
  public trace(): Record<string, unknown> {
    return {
      events: this.routed,
      executions: this.stepFunctions.allExecutions,
      calls: this.calls,
      result: this.result(),
    };
  }

  public async stop(): Promise<void> {
    await this.dynamo.stop();
  }

  /** What record-build-failure starts rebuilds through (StartExecution of the synthesized rebuild-image machine). */
  private rebuildStarter(template: CfnTemplate): RebuildStarter {
    const logicalId = Object.entries(template.Resources).find(([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.startsWith(WorkflowId.REBUILD_IMAGE))?.[0];
    const arn = logicalId ? this.resolver.stateMachineArn(logicalId) : `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:missing-rebuild-image`;
    const runtime = { account: (): string => this.account, region: (): string => this.region };
    return {
      get account(): string {
        return runtime.account();
      },
      get region(): string {
        return runtime.region();
      },
      start: async (name, input) => {
        try {
          await this.stepFunctions.startExecution(arn, input, name);
          return true;
        } catch (error) {
          if (error instanceof ExecutionAlreadyExistsError) return false;
          throw error;
        }
      },
    };
  }

  /** Every running execution waits on a task token and nothing could ever send one. */
  private parkedOnly(): boolean {
    return (
      this.queue.length === 0 &&
      this.inFlight.size === 0 &&
      this.activeInvocations === 0 &&
      this.stepFunctions.pendingTokens > 0 &&
      this.runningCount() === this.stepFunctions.pendingTokens
    );
  }

  private runningCount(): number {
    return this.stepFunctions.allExecutions.filter((e) => e.status === 'RUNNING').length;
  }

  private route(event: unknown): void {
    const bus = eventBusOf(event, this.organization, this.hubBus);
    const matched = this.rules.filter((rule) => rule.bus === bus && matchesEventPattern(rule.pattern, event));
    this.routed.push({ at: new Date().toISOString(), event, rules: matched.map((r) => r.name) });
    if (matched.length === 0) {
      const source = (event as { source?: unknown })?.source;
      // Status changes of executions are routed like any event; only Patchline's inputs are reported when unmatched.
      if (source !== 'aws.states') {
        this.deadLetters.add({ reason: 'matched no Patchline rule: not a successful ECR push or a supported finding event (EventBridge would drop it)', event, source: 'event router' });
      }
      return;
    }
    for (const rule of matched) {
      for (const target of rule.targets) this.track(this.deliver(rule, target, event));
    }
  }

  private async deliver(rule: LocalRule, target: string, event: unknown): Promise<void> {
    try {
      if (target.includes(':stateMachine:')) {
        await this.stepFunctions.startExecution(target, event);
      } else {
        const fn = this.lambdas.get(target);
        if (!fn) throw new Error(`no local handler for target ${target}`);
        await fn(event);
      }
    } catch (error) {
      // What EventBridge does after its retries: the event goes to the target's dead-letter queue.
      this.deadLetters.add({ reason: `rule ${rule.name}: delivery failed: ${(error as Error).message}`, event, source: 'event router' });
    }
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async dispatch(task: TaskContext, input: unknown): Promise<unknown> {
    const resource = task.resource;
    const params = (input ?? {}) as Record<string, unknown>;
    if (resource.startsWith('arn:aws:lambda:')) return this.invoke(resource, input);
    switch (resource) {
      case 'arn:aws:states:::lambda:invoke':
        return { StatusCode: 200, Payload: await this.invoke(String(params.FunctionName), params.Payload) };
      case 'arn:aws:states:::lambda:invoke.waitForTaskToken': {
        const output = this.stepFunctions.awaitTaskToken(task.taskToken);
        await this.invoke(String(params.FunctionName), params.Payload);
        return output;
      }
      case 'arn:aws:states:::codebuild:startBuild.sync':
        return this.codebuild.startBuildSync(params);
      case 'arn:aws:states:::states:startExecution': {
        const started = await this.stepFunctions.startExecution(
          String(params.StateMachineArn),
          typeof params.Input === 'string' ? JSON.parse(params.Input) : params.Input,
          params.Name as string | undefined,
        );
        return { ExecutionArn: started.executionArn, StartDate: started.startDate };
      }
      case 'arn:aws:states:::sqs:sendMessage':
        return this.deadLetters.sendMessage(params);
      case 'arn:aws:states:::sns:publish':
        return this.sns.publish(params);
      default:
        if (resource.startsWith('arn:aws:states:::dynamodb:')) return this.dynamoTask(resource.split(':').pop()!, params);
        throw new Error(`the local runtime has no stand-in for ${resource} (state ${task.stateName})`);
    }
  }

  private async invoke(functionArn: string, payload: unknown): Promise<unknown> {
    const fn = this.lambdas.get(functionArn);
    if (!fn) throw new Error(`no local handler for ${functionArn}`);
    this.activeInvocations += 1;
    try {
      // Lambda passes a JSON copy: handlers never share objects with the caller.
      return await fn(JSON.parse(JSON.stringify(payload ?? null)));
    } finally {
      this.activeInvocations -= 1;
    }
  }

  private async dynamoTask(action: string, params: Record<string, unknown>): Promise<unknown> {
    const commands: Record<string, new (input: never) => unknown> = {
      getItem: GetItemCommand,
      putItem: PutItemCommand,
      updateItem: UpdateItemCommand,
      deleteItem: DeleteItemCommand,
    };
    const Command = commands[action];
    if (!Command) throw new Error(`the local runtime has no DynamoDB integration for ${action}`);
    try {
      const out = (await this.dynamo.client.send(new Command(params as never) as never)) as unknown as Record<string, unknown>;
      const { $metadata: _metadata, ...rest } = out;
      return rest;
    } catch (error) {
      if (error instanceof DynamoDBServiceException) {
        const wrapped = new Error(error.message);
        wrapped.name = `DynamoDB.${error.name}`;
        throw wrapped;
      }
      throw error;
    }
  }

  private pushEvent(repository: string, digest: string, tag: string, registry?: { account: string; region: string }): Record<string, unknown> {
    return {
      version: '0',
      id: createHash('sha256').update(`${repository}${digest}`).digest('hex').slice(0, 32),
      'detail-type': 'ECR Image Action',
      source: 'aws.ecr',
      account: registry?.account ?? this.account,
      time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      region: registry?.region ?? this.region,
      resources: [],
      detail: { result: 'SUCCESS', 'repository-name': repository, 'image-digest': digest, 'action-type': 'PUSH', 'image-tag': tag },
    };
  }

  private statusChangeEvent(execution: ExecutionRecord): Record<string, unknown> {
    return {
      version: '0',
      id: createHash('sha256').update(`${execution.arn}${execution.status}`).digest('hex').slice(0, 32),
      'detail-type': 'Step Functions Execution Status Change',
      source: 'aws.states',
      account: LOCAL_ACCOUNT,
      time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      region: LOCAL_REGION,
      resources: [execution.arn],
      detail: {
        executionArn: execution.arn,
        stateMachineArn: execution.stateMachineArn,
        name: execution.name,
        status: execution.status,
        startDate: Date.parse(execution.startedAt),
        stopDate: execution.stoppedAt ? Date.parse(execution.stoppedAt) : null,
        input: JSON.stringify(execution.input),
        output: execution.output === undefined ? null : JSON.stringify(execution.output),
      },
    };
  }
}
