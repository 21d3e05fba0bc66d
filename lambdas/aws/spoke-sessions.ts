import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { hubAccessRoleArn, RegistryLocation } from '../domain/registry-scope';
import { TemporaryCredentials } from './remote-codebuild';
import { traced } from './traced-client';

export interface SpokeAssumeRoleRequest {
  readonly roleArn: string;
  readonly region: string;
  /** 2–64 of `[\w+=,.@-]`. */
  readonly sessionName: string;
  readonly durationSeconds: number;
}

/** An assumed session: the spoke's account and region, the role and the session name. */
export interface SpokeSession extends RegistryLocation {
  readonly roleArn: string;
  readonly sessionName: string;
}

export class SpokeRegistryAccessError extends Error {
  public readonly code = 'SPOKE_REGISTRY_ACCESS_DENIED';
  public constructor(public readonly roleArn: string, public readonly region: string, options?: { cause?: unknown }) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'no credentials returned';
    super(`could not assume ${roleArn} in ${region} to read the spoke's registry (is the spoke stack deployed, and does its trust name this function's role?): ${reason}`, options);
    this.name = 'SpokeRegistryAccessError';
  }
}

export interface SpokeSessionCacheProps<T> {
  /** AssumeRole at the spoke region's STS endpoint. */
  readonly assumeRole: (request: SpokeAssumeRoleRequest) => Promise<TemporaryCredentials>;
  /** What a session is used through (clients built with its credentials). */
  readonly open: (session: SpokeSession, credentials: TemporaryCredentials) => T;
  /** The session length asked of STS. */
  readonly durationSeconds: number;
  /** A session this close to its expiration is not reused: work must not start with credentials about to lapse. */
  readonly expiryMarginMillis: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * Sessions of the spokes' PatchlineHubAccess-<region> roles, one per role and region for the life of the container,
 * reused only while their credentials are valid (minus the margin); a session without an expiration is not kept, and
 * a refused AssumeRole is never cached (SpokeRegistryAccessError).
 */
export class SpokeSessionCache<T> {
  private readonly sessions = new Map<string, { opened: T; expiration: Date }>();
  private readonly now: () => Date;

  public constructor(private readonly props: SpokeSessionCacheProps<T>) {
    this.now = props.now ?? (() => new Date());
  }

  /** `spoke`'s session, opened with `sessionName` when none is kept. */
  public async of(spoke: RegistryLocation, sessionName: string): Promise<T> {
    const roleArn = hubAccessRoleArn(spoke.account, spoke.region);
    const key = `${roleArn} ${spoke.region}`;
    const kept = this.sessions.get(key);
    if (kept && kept.expiration.getTime() - this.props.expiryMarginMillis > this.now().getTime()) return kept.opened;
    this.sessions.delete(key);
    let credentials: TemporaryCredentials;
    try {
      credentials = await this.props.assumeRole({ roleArn, region: spoke.region, sessionName, durationSeconds: this.props.durationSeconds });
    } catch (error) {
      throw new SpokeRegistryAccessError(roleArn, spoke.region, { cause: error });
    }
    if (!credentials.accessKeyId || !credentials.secretAccessKey) throw new SpokeRegistryAccessError(roleArn, spoke.region);
    const opened = this.props.open({ account: spoke.account, region: spoke.region, roleArn, sessionName }, credentials);
    if (credentials.expiration) this.sessions.set(key, { opened, expiration: credentials.expiration });
    return opened;
  }
}

/**
 * AssumeRole at each region's own STS endpoint (regional: it works with the global endpoint disabled and keeps the
 * call in the spoke's region), one STS client per region.
 */
export function regionalAssumeRole(sts: (region: string) => STSClient = (region) => traced(new STSClient({ region, useGlobalEndpoint: false }))): (request: SpokeAssumeRoleRequest) => Promise<TemporaryCredentials> {
  const clients = new Map<string, STSClient>();
  return async (request) => {
    let client = clients.get(request.region);
    if (!client) clients.set(request.region, (client = sts(request.region)));
    const out = await client.send(new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: request.durationSeconds }));
    const c = out.Credentials;
    return { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken, expiration: c?.Expiration };
  };
}
