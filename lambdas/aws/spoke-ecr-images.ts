import { ECRClient } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { hubAccessRoleArn, RegistryLocation } from '../domain/registry-scope';
import { EcrImages, SdkEcrImages } from './ecr-images';
import { TemporaryCredentials } from './remote-codebuild';
import { traced } from './traced-client';

/** The ECR registries of the configured spokes, as learn-lineage reads them. */
export interface SpokeEcrImages {
  /** A reader of `spoke`'s registry, through its PatchlineHubAccess-<region> role; `sessionName` names a new session. */
  readerOf(spoke: RegistryLocation, sessionName: string): Promise<EcrImages>;
}

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

export interface AssumedRoleEcrImagesProps {
  /** AssumeRole at the spoke region's STS endpoint. */
  readonly assumeRole: (request: SpokeAssumeRoleRequest) => Promise<TemporaryCredentials>;
  /** The ECR reader of the session's registry, with its credentials. */
  readonly reader: (session: SpokeSession, credentials: TemporaryCredentials) => EcrImages;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/** The session's length: learn-lineage reads a manifest, a config blob and tags, seconds of work (STS's minimum). */
export const SPOKE_SESSION_SECONDS = 900;
/** A session this close to its expiration is not reused: a read must not start with credentials about to lapse. */
const EXPIRY_MARGIN_MILLIS = 60_000;

export class SpokeRegistryAccessError extends Error {
  public readonly code = 'SPOKE_REGISTRY_ACCESS_DENIED';
  public constructor(public readonly roleArn: string, public readonly region: string, options?: { cause?: unknown }) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'no credentials returned';
    super(`could not assume ${roleArn} in ${region} to read the spoke's registry (is the spoke stack deployed, and does its trust name this function's role?): ${reason}`, options);
    this.name = 'SpokeRegistryAccessError';
  }
}

interface Session {
  readonly reader: EcrImages;
  readonly expiration: Date;
}

/**
 * Assumes a spoke's hub-access role and reads its registry with that session. A session is kept per role and region
 * for the life of the container, and only while its credentials are valid (a minute's margin); without an expiration
 * it is not kept.
 */
export class AssumedRoleEcrImages implements SpokeEcrImages {
  private readonly sessions = new Map<string, Session>();
  private readonly now: () => Date;

  public constructor(private readonly props: AssumedRoleEcrImagesProps) {
    this.now = props.now ?? (() => new Date());
  }

  public async readerOf(spoke: RegistryLocation, sessionName: string): Promise<EcrImages> {
    const roleArn = hubAccessRoleArn(spoke.account, spoke.region);
    const key = `${roleArn} ${spoke.region}`;
    const kept = this.sessions.get(key);
    if (kept && kept.expiration.getTime() - EXPIRY_MARGIN_MILLIS > this.now().getTime()) return kept.reader;
    this.sessions.delete(key);
    let credentials: TemporaryCredentials;
    try {
      credentials = await this.props.assumeRole({ roleArn, region: spoke.region, sessionName, durationSeconds: SPOKE_SESSION_SECONDS });
    } catch (error) {
      throw new SpokeRegistryAccessError(roleArn, spoke.region, { cause: error });
    }
    if (!credentials.accessKeyId || !credentials.secretAccessKey) throw new SpokeRegistryAccessError(roleArn, spoke.region);
    const reader = this.props.reader({ account: spoke.account, region: spoke.region, roleArn, sessionName }, credentials);
    if (credentials.expiration) this.sessions.set(key, { reader, expiration: credentials.expiration });
    return reader;
  }
}

/**
 * The AWS implementation: AssumeRole at the spoke region's STS endpoint (regional: it works with the global endpoint
 * disabled and keeps the call in the spoke's region), then ECR in that region with the session's credentials.
 */
export function awsSpokeEcrImages(clients: { sts?: (region: string) => STSClient; ecr?: (region: string, credentials: TemporaryCredentials) => ECRClient; now?: () => Date } = {}): AssumedRoleEcrImages {
  const stsClients = new Map<string, STSClient>();
  const sts = clients.sts ?? ((region: string) => traced(new STSClient({ region, useGlobalEndpoint: false })));
  const ecr = clients.ecr ?? ((region: string, credentials: TemporaryCredentials) => traced(new ECRClient({ region, credentials })));
  return new AssumedRoleEcrImages({
    assumeRole: async (request) => {
      let client = stsClients.get(request.region);
      if (!client) stsClients.set(request.region, (client = sts(request.region)));
      const out = await client.send(new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: request.durationSeconds }));
      const c = out.Credentials;
      return { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken, expiration: c?.Expiration };
    },
    reader: (session, credentials) => new SdkEcrImages({ client: ecr(session.region, credentials) }),
    ...(clients.now ? { now: clients.now } : {}),
  });
}
