import { createHash } from 'crypto';
import { parseRegistryKey, RegistryLocation } from '../../lambdas/domain/registry-scope';

/** Every call a stand-in received, in order: what the local runtime prints and writes under .patchline/. */
export interface RecordedCall {
  readonly service: 'codebuild' | 'sns' | 'sqs' | 'ecr' | 'sts';
  readonly action: string;
  readonly at: string;
  readonly parameters: unknown;
  readonly outcome?: string;
}

export interface BuildRecord {
  readonly buildId: string;
  readonly project: string;
  readonly image: string;
  readonly baseImage: string;
  readonly campaign: string;
  readonly parentImages: readonly string[];
  readonly status: 'SUCCEEDED' | 'FAILED' | 'STOPPED';
  readonly pushedDigest?: string;
  /** The task's `Credentials.RoleArn`: the spoke role a build in another account was started through. */
  readonly roleArn?: string;
  /** The registry the build pushed to, when it is not the runtime's own (a spoke image's qualified key). */
  readonly registry?: RegistryLocation;
  /** The region CodeBuild was called in, for a build started outside the hub's region (start-remote-build). */
  readonly buildRegion?: string;
}

export interface BuildBehaviour {
  /** Projects whose builds fail. */
  readonly failProjects?: ReadonlySet<string>;
  /** Project → how many StartBuild calls are refused with AccountLimitExceeded before one is accepted. */
  readonly throttle?: ReadonlyMap<string, number>;
  /** Simulated build time in milliseconds (lets builds overlap so the concurrency cap is exercised). @default 5 */
  readonly buildMillis?: number;
  /** Project → its own simulated build time in milliseconds (a build still running when its execution is stopped). @default buildMillis */
  readonly projectBuildMillis?: ReadonlyMap<string, number>;
}

export class CodeBuildStandInError extends Error {
  public constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/**
 * CodeBuild stand-in: StartBuild (.sync) records the call and "builds" the image: it pushes a new digest of
 * PATCHLINE_IMAGE through `push`, which re-enters the local event router as an ECR push, then reports the build.
 */
export class LocalCodeBuild {
  public readonly builds: BuildRecord[] = [];
  private readonly throttled = new Map<string, number>();
  private running = 0;
  private started = 0;
  /** Remote builds still running, by build id: StopBuild ends one early. */
  private readonly stoppable = new Map<string, () => void>();
  /** The most builds that ran at once (the concurrency cap must hold it down). */
  public maxConcurrent = 0;

  public constructor(
    private readonly calls: RecordedCall[],
    private readonly push: (repository: string, digest: string, tag: string, baseImage?: string, registry?: RegistryLocation) => void,
    private readonly behaviour: BuildBehaviour = {},
  ) {}

  public async startBuildSync(parameters: Record<string, unknown>): Promise<unknown> {
    const at = new Date().toISOString();
    const buildId = this.accept(parameters, at);
    const record = await this.run(parameters, buildId, at);
    if (record.status === 'FAILED') {
      throw new CodeBuildStandInError('States.TaskFailed', JSON.stringify({ Build: { Id: buildId, BuildStatus: 'FAILED', ProjectName: record.project } }));
    }
    return { Build: { Id: buildId, BuildStatus: 'SUCCEEDED', ProjectName: record.project } };
  }

  /**
   * StartBuild without `.sync`, in another region (start-remote-build): returns the build id at once (or throws the
   * throttling refusal); `finished` settles when the build has ended, after its push.
   */
  public startBuild(parameters: Record<string, unknown>, region: string): { buildId: string; finished: Promise<BuildRecord> } {
    const at = new Date().toISOString();
    const buildId = this.accept(parameters, at);
    return { buildId, finished: this.run(parameters, buildId, at, region) };
  }

  /**
   * StopBuild (stop-remote-build, through the role it assumed): a running remote build ends STOPPED without pushing;
   * a build that has ended, or one never started, is reported so (CodeBuild refuses the stop of an ended build).
   */
  public stopBuild(buildId: string, parameters: Record<string, unknown>): 'stopped' | 'already-ended' {
    const stop = this.stoppable.get(buildId);
    this.calls.push({ service: 'codebuild', action: 'StopBuild', at: new Date().toISOString(), parameters: { Id: buildId, ...parameters }, outcome: stop ? 'STOPPED' : 'InvalidInputException' });
    if (!stop) return 'already-ended';
    this.stoppable.delete(buildId);
    stop();
    return 'stopped';
  }

  /** Refuses a throttled start (recorded), else names the build. */
  private accept(parameters: Record<string, unknown>, at: string): string {
    const project = String(parameters.ProjectName);
    const refusals = this.behaviour.throttle?.get(project) ?? 0;
    const seen = this.throttled.get(project) ?? 0;
    if (seen < refusals) {
      this.throttled.set(project, seen + 1);
      this.calls.push({ service: 'codebuild', action: 'StartBuild', at, parameters, outcome: 'AccountLimitExceededException' });
      throw new CodeBuildStandInError('CodeBuild.AccountLimitExceededException', 'Cannot have more than 0 builds in queue for the account');
    }
    // Counted at the start: remote builds run concurrently, so the finished builds do not number them uniquely.
    this.started += 1;
    return `${project}:${createHash('sha256').update(`${project}${this.started}${at}`).digest('hex').slice(0, 8)}-${this.started}`;
  }

  /** "Builds" and, unless the project fails, pushes PATCHLINE_IMAGE; the record says how it ended. */
  private async run(parameters: Record<string, unknown>, buildId: string, at: string, buildRegion?: string): Promise<BuildRecord> {
    const project = String(parameters.ProjectName);
    const env = new Map(((parameters.EnvironmentVariablesOverride as Array<{ Name: string; Value: string }>) ?? []).map((v) => [v.Name, v.Value]));
    this.running += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      const stopped = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), this.behaviour.projectBuildMillis?.get(project) ?? this.behaviour.buildMillis ?? 5);
        // Only builds started without `.sync` can be stopped here (Step Functions stops its own).
        if (buildRegion !== undefined) {
          this.stoppable.set(buildId, () => {
            clearTimeout(timer);
            resolve(true);
          });
        }
      });
      this.stoppable.delete(buildId);
      const image = env.get('PATCHLINE_IMAGE') ?? project;
      const roleArn = (parameters.Credentials as { RoleArn?: unknown } | undefined)?.RoleArn;
      // A spoke image's key names its registry: the build pushes there, as the spoke's buildspec would.
      const target = parseRegistryKey(image);
      const failed = stopped || (this.behaviour.failProjects?.has(project) ?? false);
      const pushedDigest = failed ? undefined : `sha256:${createHash('sha256').update(`${buildId}|${env.get('BASE_IMAGE')}`).digest('hex')}`;
      const record: BuildRecord = {
        buildId,
        project,
        image,
        baseImage: env.get('BASE_IMAGE') ?? '',
        campaign: env.get('PATCHLINE_CAMPAIGN') ?? '',
        parentImages: JSON.parse(env.get('PATCHLINE_PARENT_IMAGES') ?? '[]') as string[],
        status: stopped ? 'STOPPED' : failed ? 'FAILED' : 'SUCCEEDED',
        pushedDigest,
        ...(typeof roleArn === 'string' && { roleArn }),
        ...(target && { registry: { account: target.account, region: target.region } }),
        ...(buildRegion !== undefined && { buildRegion }),
      };
      this.builds.push(record);
      this.calls.push({ service: 'codebuild', action: 'StartBuild', at, parameters, outcome: record.status });
      // The buildspec's `docker push` happens before the build reports success.
      if (!failed) this.push(target?.repository ?? image, pushedDigest!, 'patchline-rebuild', env.get('BASE_IMAGE'), target && { account: target.account, region: target.region });
      return record;
    } finally {
      this.running -= 1;
    }
  }
}

export interface PublishedMessage {
  readonly topicArn: string;
  readonly subject?: string;
  readonly message: string;
  readonly attributes: Record<string, string>;
}

/** SNS stand-in: records every Publish with its message attributes (the owner filter policies match on them). */
export class LocalSns {
  public readonly published: PublishedMessage[] = [];
  /**
   * While set, every Publish is refused with this error (recorded, nothing published): an SNS outage, for the
   * undelivered-alert path. `SNS.InternalErrorException` is one the state machines retry before they give up.
   */
  public refuseWith?: string;
  public constructor(private readonly calls: RecordedCall[]) {}

  public publish(parameters: Record<string, unknown>): { MessageId: string } {
    if (this.refuseWith !== undefined) {
      this.calls.push({ service: 'sns', action: 'Publish', at: new Date().toISOString(), parameters, outcome: this.refuseWith });
      const refused = new Error('Internal error: the local SNS refuses every Publish');
      refused.name = this.refuseWith;
      throw refused;
    }
    const attributes = Object.fromEntries(
      Object.entries((parameters.MessageAttributes as Record<string, { StringValue?: string }>) ?? {}).map(([k, v]) => [k, String(v.StringValue ?? '')]),
    );
    const message: PublishedMessage = {
      topicArn: String(parameters.TopicArn),
      subject: parameters.Subject as string | undefined,
      message: typeof parameters.Message === 'string' ? parameters.Message : JSON.stringify(parameters.Message),
      attributes,
    };
    this.published.push(message);
    this.calls.push({ service: 'sns', action: 'Publish', at: new Date().toISOString(), parameters });
    return { MessageId: `local-${this.published.length}` };
  }
}

export interface DeadLetter {
  readonly reason: string;
  readonly event: unknown;
  readonly source: string;
}

/** SQS dead-letter queue stand-in: keeps each message whole. */
export class LocalDeadLetterQueue {
  public readonly messages: DeadLetter[] = [];
  public constructor(private readonly calls: RecordedCall[]) {}

  public sendMessage(parameters: Record<string, unknown>): { MessageId: string } {
    const body = typeof parameters.MessageBody === 'string' ? (JSON.parse(parameters.MessageBody) as Record<string, unknown>) : (parameters.MessageBody as Record<string, unknown>);
    // An undelivered alert's message carries the alert (to publish again) where a refused event's carries the event.
    this.messages.push({ reason: String(body.reason ?? body.error ?? 'unknown'), event: body.event ?? body.alert, source: String(body.stateMachine ?? 'state machine') });
    this.calls.push({ service: 'sqs', action: 'SendMessage', at: new Date().toISOString(), parameters });
    return { MessageId: `local-dlq-${this.messages.length}` };
  }

  public add(letter: DeadLetter): void {
    this.messages.push(letter);
    this.calls.push({ service: 'sqs', action: 'SendMessage', at: new Date().toISOString(), parameters: letter });
  }
}
