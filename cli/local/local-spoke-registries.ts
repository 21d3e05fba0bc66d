import { AssumedRoleEcrImages } from '../../lambdas/aws/spoke-ecr-images';
import { RegistryLocation } from '../../lambdas/domain/registry-scope';
import { RecordedCall } from './local-aws';
import { LocalEcr } from './local-ecr';

/**
 * The spokes' registries and the STS learn-lineage reaches them through: one ECR stand-in per spoke account and region
 * (a spoke build pushes into its own), read with the same session handling as in AWS (AssumedRoleEcrImages). The
 * stand-in STS records each AssumeRole (role, session name, duration and the regional endpoint's region) and returns
 * credentials valid for the duration asked; each read through a session is recorded with its role and region.
 */
export class LocalSpokeRegistries {
  /** What learn-lineage reads a spoke push through. */
  public readonly reader: AssumedRoleEcrImages;
  private readonly registries = new Map<string, LocalEcr>();

  public constructor(private readonly calls: RecordedCall[], now: () => Date = () => new Date()) {
    let sessions = 0;
    this.reader = new AssumedRoleEcrImages({
      assumeRole: async (request) => {
        this.calls.push({
          service: 'sts',
          action: 'AssumeRole',
          at: now().toISOString(),
          parameters: { RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: request.durationSeconds, Region: request.region },
        });
        sessions += 1;
        return { accessKeyId: `ASIALOCAL${sessions}`, secretAccessKey: 'local', sessionToken: 'local', expiration: new Date(now().getTime() + request.durationSeconds * 1000) };
      },
      reader: (session) => this.registry(session).withSession(session),
      now,
    });
  }

  /** The registry of a spoke account and region (empty until something is pushed into it). */
  public registry(location: RegistryLocation): LocalEcr {
    const key = `${location.account}/${location.region}`;
    let registry = this.registries.get(key);
    if (!registry) this.registries.set(key, (registry = new LocalEcr(this.calls, { Registry: key })));
    return registry;
  }
}
