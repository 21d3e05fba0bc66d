import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createHash } from 'crypto';
import { partitionOf } from '../../lambdas/domain/registry-scope';
import { RemoteBuildStopOutcome, RemoteCodeBuild } from '../../lambdas/aws/remote-codebuild';
import { HandlerDependencies } from '../../lambdas/handlers/dependencies';
import { RemoteBuildTokenStore } from '../../lambdas/store/remote-build-store';
import { BuildRecord, LocalCodeBuild } from './local-aws';

/** What start-remote-build, remote-build-ended and stop-remote-build act through locally: the CodeBuild stand-in and the table. */
export interface LocalRemoteBuildServices {
  readonly codebuild: RemoteCodeBuild;
  readonly tokens: RemoteBuildTokenStore;
}

export interface LocalRemoteBuildProps {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly codebuild: LocalCodeBuild;
  /** Keeps the runtime busy while a build runs (a parked execution is not a leak then). */
  readonly track: (work: Promise<unknown>) => void;
  /** Puts an event on the router (the spoke's forwarded build state change). */
  readonly emit: (event: Record<string, unknown>) => void;
}

/**
 * The remote StartBuild on the CodeBuild stand-in: it records the role the hub assumed and the region it called, runs
 * the build (which pushes into the spoke) and then emits the spoke's "CodeBuild Build State Change" event, which the
 * runtime routes like a forwarded one (its account/region are the spoke's: the hub bus).
 */
export function localRemoteCodeBuild(props: Pick<LocalRemoteBuildProps, 'codebuild' | 'track' | 'emit'>, stored: (buildArn: string) => Promise<void> = async () => undefined): RemoteCodeBuild {
  return {
    startBuild: async (request) => {
      const parameters = {
        ProjectName: request.project,
        EnvironmentVariablesOverride: request.environment.map((v) => ({ Name: v.name, Value: v.value, Type: 'PLAINTEXT' })),
        // What the stand-in records for a task's Credentials: here, the role start-remote-build assumed.
        Credentials: { RoleArn: request.roleArn, RoleSessionName: request.sessionName },
        Region: request.region,
      };
      const { buildId, finished } = props.codebuild.startBuild(parameters, request.region);
      const arn = buildArn(request.account, request.region, buildId);
      // In AWS the end event comes minutes after start-remote-build stored the token; a 5 ms local build could beat
      // the store, so the event waits for it (as the real ordering guarantees in practice).
      const token = stored(arn);
      props.track(finished.then(async (record) => {
        await token;
        props.emit(buildStateChangeEvent(record, request.account, request.region, arn));
      }));
      return { id: buildId, arn };
    },
    // StopBuild on the stand-in: a running build ends STOPPED (its end event still follows, as in the spoke).
    stopBuild: async (request) =>
      props.codebuild.stopBuild(request.buildId, { Credentials: { RoleArn: request.roleArn, RoleSessionName: request.sessionName }, Region: request.region }) === 'stopped'
        ? RemoteBuildStopOutcome.STOPPED
        : RemoteBuildStopOutcome.ALREADY_ENDED,
  };
}

export function buildArn(account: string, region: string, buildId: string): string {
  return `arn:${partitionOf(region)}:codebuild:${region}:${account}:build/${buildId}`;
}

/** The event CodeBuild emits in the spoke when a build ends (the fields of the real sample that Patchline reads). */
export function buildStateChangeEvent(record: BuildRecord, account: string, region: string, arn: string): Record<string, unknown> {
  return {
    version: '0',
    id: createHash('sha256').update(`${arn}${record.status}`).digest('hex').slice(0, 32),
    'detail-type': 'CodeBuild Build State Change',
    source: 'aws.codebuild',
    account,
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region,
    resources: [arn],
    detail: { 'build-status': record.status, 'project-name': record.project, 'build-id': arn, 'additional-information': { 'build-complete': true } },
  };
}

/** The token store, telling when a build's token is stored (or after a while: a failed store must not hang the runtime). */
class NotifyingTokenStore extends RemoteBuildTokenStore {
  private readonly waiting = new Map<string, () => void>();

  public override async put(...args: Parameters<RemoteBuildTokenStore['put']>): Promise<void> {
    await super.put(...args);
    const [token] = args;
    this.waiting.get(token.buildArn)?.();
    this.waiting.delete(token.buildArn);
  }

  public stored(buildArn: string): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 5_000);
      this.waiting.set(buildArn, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

const bound = new WeakMap<HandlerDependencies, LocalRemoteBuildServices>();

/** Creates the remote-build services of one runtime, found again by its dependencies (HANDLER_FACTORIES get only those). */
export function bindLocalRemoteBuilds(deps: HandlerDependencies, props: LocalRemoteBuildProps): LocalRemoteBuildServices {
  const tokens = new NotifyingTokenStore({ client: props.client, tableName: props.tableName });
  const services = { codebuild: localRemoteCodeBuild(props, (arn) => tokens.stored(arn)), tokens };
  bound.set(deps, services);
  return services;
}

export class LocalRemoteBuildsNotBoundError extends Error {
  public readonly code = 'LOCAL_REMOTE_BUILDS_NOT_BOUND';
  public constructor() {
    super('no local remote-build services are bound to these handler dependencies (bindLocalRemoteBuilds is called when a LocalRuntime starts)');
    this.name = 'LocalRemoteBuildsNotBoundError';
  }
}

export function localRemoteBuildsFor(deps: HandlerDependencies): LocalRemoteBuildServices {
  const services = bound.get(deps);
  if (!services) throw new LocalRemoteBuildsNotBoundError();
  return services;
}
