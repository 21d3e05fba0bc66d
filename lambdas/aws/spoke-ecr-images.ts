import { ECRClient } from '@aws-sdk/client-ecr';
import type { STSClient } from '@aws-sdk/client-sts';
import { RegistryLocation } from '../domain/registry-scope';
import { EcrImages, SdkEcrImages } from './ecr-images';
import { TemporaryCredentials } from './remote-codebuild';
import { regionalAssumeRole, SpokeAssumeRoleRequest, SpokeSession, SpokeSessionCache } from './spoke-sessions';
import { traced } from './traced-client';

/** The ECR registries of the configured spokes, as learn-lineage reads them. */
export interface SpokeEcrImages {
  /** A reader of `spoke`'s registry, through its PatchlineHubAccess-<region> role; `sessionName` names a new session. */
  readerOf(spoke: RegistryLocation, sessionName: string): Promise<EcrImages>;
}

export type { SpokeAssumeRoleRequest, SpokeSession } from './spoke-sessions';
export { SpokeRegistryAccessError } from './spoke-sessions';

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

/**
 * Assumes a spoke's hub-access role and reads its registry with that session. A session is kept per role and region
 * for the life of the container, and only while its credentials are valid (a minute's margin); without an expiration
 * it is not kept.
 */
export class AssumedRoleEcrImages implements SpokeEcrImages {
  private readonly sessions: SpokeSessionCache<EcrImages>;

  public constructor(props: AssumedRoleEcrImagesProps) {
    this.sessions = new SpokeSessionCache({
      assumeRole: props.assumeRole,
      open: props.reader,
      durationSeconds: SPOKE_SESSION_SECONDS,
      expiryMarginMillis: EXPIRY_MARGIN_MILLIS,
      ...(props.now && { now: props.now }),
    });
  }

  public readerOf(spoke: RegistryLocation, sessionName: string): Promise<EcrImages> {
    return this.sessions.of(spoke, sessionName);
  }
}

/**
 * The AWS implementation: AssumeRole at the spoke region's STS endpoint (regional: it works with the global endpoint
 * disabled and keeps the call in the spoke's region), then ECR in that region with the session's credentials.
 */
export function awsSpokeEcrImages(clients: { sts?: (region: string) => STSClient; ecr?: (region: string, credentials: TemporaryCredentials) => ECRClient; now?: () => Date } = {}): AssumedRoleEcrImages {
  const ecr = clients.ecr ?? ((region: string, credentials: TemporaryCredentials) => traced(new ECRClient({ region, credentials })));
  return new AssumedRoleEcrImages({
    assumeRole: regionalAssumeRole(clients.sts),
    reader: (session, credentials) => new SdkEcrImages({ client: ecr(session.region, credentials) }),
    ...(clients.now ? { now: clients.now } : {}),
  });
}
