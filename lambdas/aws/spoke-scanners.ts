import { ECRClient } from '@aws-sdk/client-ecr';
import { Inspector2Client } from '@aws-sdk/client-inspector2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { hubAccessRoleArn, RegistryLocation } from '../domain/registry-scope';
import { EcrRegistry } from './ecr-registry';
import { InspectorFindings } from './inspector-findings';
import { TemporaryCredentials } from './remote-codebuild';
import { SpokeAssumeRoleRequest, SpokeRegistryAccessError, SpokeSession } from './spoke-ecr-images';
import { traced } from './traced-client';

/** A spoke's ECR and Inspector2, as the rescan reads them (the same clients as the hub's, with the spoke's session). */
export interface SpokeScannerClients {
  readonly ecr: EcrRegistry;
  readonly inspector: InspectorFindings;
}

/** The ECR registries and Inspector2 of the configured spokes, as registry-rescan sweeps them. */
export interface SpokeScanners {
  /** `spoke`'s ECR and Inspector2, through its PatchlineHubAccess-<region> role; `sessionName` names a new session. */
  scannersOf(spoke: RegistryLocation, sessionName: string): Promise<SpokeScannerClients>;
}

export interface AssumedRoleSpokeScannersProps {
  /** AssumeRole at the spoke region's STS endpoint. */
  readonly assumeRole: (request: SpokeAssumeRoleRequest) => Promise<TemporaryCredentials>;
  /** The session's ECR and Inspector2 clients, with its credentials. */
  readonly clients: (session: SpokeSession, credentials: TemporaryCredentials) => SpokeScannerClients;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/** The session's length: the spoke role's maximum (one hour), so the repositories of a spoke share a session. */
export const RESCAN_SESSION_SECONDS = 3600;
/**
 * A session this close to its expiration is not reused: a repository's sweep (up to the function's 10-minute timeout)
 * must not start with credentials that lapse before it ends.
 */
const EXPIRY_MARGIN_MILLIS = 11 * 60_000;

/**
 * Assumes a spoke's hub-access role and reads its ECR and Inspector2 with that session; a session is kept per role and
 * region while its credentials are valid (an 11-minute margin), so the repositories of one spoke share it.
 */
export class AssumedRoleSpokeScanners implements SpokeScanners {
  private readonly sessions = new Map<string, { clients: SpokeScannerClients; expiration: Date }>();
  private readonly now: () => Date;

  public constructor(private readonly props: AssumedRoleSpokeScannersProps) {
    this.now = props.now ?? (() => new Date());
  }

  public async scannersOf(spoke: RegistryLocation, sessionName: string): Promise<SpokeScannerClients> {
    const roleArn = hubAccessRoleArn(spoke.account, spoke.region);
    const key = `${roleArn} ${spoke.region}`;
    const kept = this.sessions.get(key);
    if (kept && kept.expiration.getTime() - EXPIRY_MARGIN_MILLIS > this.now().getTime()) return kept.clients;
    this.sessions.delete(key);
    let credentials: TemporaryCredentials;
    try {
      credentials = await this.props.assumeRole({ roleArn, region: spoke.region, sessionName, durationSeconds: RESCAN_SESSION_SECONDS });
    } catch (error) {
      throw new SpokeRegistryAccessError(roleArn, spoke.region, { cause: error });
    }
    if (!credentials.accessKeyId || !credentials.secretAccessKey) throw new SpokeRegistryAccessError(roleArn, spoke.region);
    const clients = this.props.clients({ account: spoke.account, region: spoke.region, roleArn, sessionName }, credentials);
    if (credentials.expiration) this.sessions.set(key, { clients, expiration: credentials.expiration });
    return clients;
  }
}

/** The AWS implementation: AssumeRole at the spoke region's STS endpoint, then ECR and Inspector2 in that region. */
export function awsSpokeScanners(): AssumedRoleSpokeScanners {
  const stsClients = new Map<string, STSClient>();
  return new AssumedRoleSpokeScanners({
    assumeRole: async (request) => {
      let client = stsClients.get(request.region);
      if (!client) stsClients.set(request.region, (client = traced(new STSClient({ region: request.region, useGlobalEndpoint: false }))));
      const out = await client.send(new AssumeRoleCommand({ RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: request.durationSeconds }));
      const c = out.Credentials;
      return { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken, expiration: c?.Expiration };
    },
    clients: (session, credentials) => ({
      ecr: new EcrRegistry(traced(new ECRClient({ region: session.region, credentials }))),
      inspector: new InspectorFindings(traced(new Inspector2Client({ region: session.region, credentials }))),
    }),
  });
}
