import { ECRClient } from '@aws-sdk/client-ecr';
import { Inspector2Client } from '@aws-sdk/client-inspector2';
import { RegistryLocation } from '../domain/registry-scope';
import { EcrRegistry } from './ecr-registry';
import { InspectorFindings } from './inspector-findings';
import { TemporaryCredentials } from './remote-codebuild';
import { regionalAssumeRole, SpokeAssumeRoleRequest, SpokeSession, SpokeSessionCache } from './spoke-sessions';
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
  private readonly sessions: SpokeSessionCache<SpokeScannerClients>;

  public constructor(props: AssumedRoleSpokeScannersProps) {
    this.sessions = new SpokeSessionCache({
      assumeRole: props.assumeRole,
      open: props.clients,
      durationSeconds: RESCAN_SESSION_SECONDS,
      expiryMarginMillis: EXPIRY_MARGIN_MILLIS,
      ...(props.now && { now: props.now }),
    });
  }

  public scannersOf(spoke: RegistryLocation, sessionName: string): Promise<SpokeScannerClients> {
    return this.sessions.of(spoke, sessionName);
  }
}

/** The AWS implementation: AssumeRole at the spoke region's STS endpoint, then ECR and Inspector2 in that region. */
export function awsSpokeScanners(): AssumedRoleSpokeScanners {
  return new AssumedRoleSpokeScanners({
    assumeRole: regionalAssumeRole(),
    clients: (session, credentials) => ({
      ecr: new EcrRegistry(traced(new ECRClient({ region: session.region, credentials }))),
      inspector: new InspectorFindings(traced(new Inspector2Client({ region: session.region, credentials }))),
    }),
  });
}
