import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeImagesCommand, DescribeRepositoriesCommand, ECRClient, LimitExceededException, RepositoryNotFoundException, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { Finding, Inspector2Client, ListFindingsCommand } from '@aws-sdk/client-inspector2';
import { EcrRegistry, ECR_PAGE_SIZE } from '../../lambdas/aws/ecr-registry';
import { InspectorFindings, LIST_FINDINGS_PAGE_SIZE } from '../../lambdas/aws/inspector-findings';
import { AssumedRoleSpokeScanners } from '../../lambdas/aws/spoke-scanners';
import { RegistryUnavailableError } from '../../lambdas/aws/oci-registry';
import { PatchlineConfig } from '../../lambdas/domain/config';
import { RegistryLocation } from '../../lambdas/domain/registry-scope';
import { formatImageRef, ImageRef } from '../../lambdas/domain/image-ref';
import { ECR_SCAN_INTERVAL_MS } from '../../lambdas/domain/rescan';
import { HandlerDependencies } from '../../lambdas/handlers/dependencies';
import { DEFAULT_MAX_SCAN_AGE_DAYS, RescanServices, RescanSettings } from '../../lambdas/handlers/rescan-services';
import { DynamoVersionHistoryStore, VersionHistory } from '../../lambdas/store/version-history-store';
import { RecordedCall } from './local-aws';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './synthesized-template';

/**
 * ECR and Inspector2 stand-ins for the rescan, at the SDK level: the real EcrRegistry and InspectorFindings clients
 * talk to them, so paging (ECR's 1,000 and Inspector2's 100 a page), filters and ECR's one-scan-a-day refusal are
 * exercised as in AWS. Every call is counted.
 */

interface StoredImage {
  tags: string[];
  pushedAt: Date;
  scanStatus?: string;
  lastScanAt?: Date;
}

type Send = (command: unknown) => Promise<unknown>;

export class LocalScannerBackend {
  public readonly calls: Record<string, number> = {};
  private readonly repositories = new Map<string, Map<string, StoredImage>>();
  private findings: Finding[] = [];

  public constructor(
    private readonly now: () => Date = () => new Date(),
    /** The registry it stands in for (repository ARNs carry it). @default the local account and region */
    private readonly location: RegistryLocation = { account: LOCAL_ACCOUNT, region: LOCAL_REGION },
  ) {}

  public addImage(repository: string, digest: string, image: { tags?: string[]; pushedAt?: string; lastScanAt?: string; scanStatus?: string } = {}): void {
    const images = this.repositories.get(repository) ?? new Map<string, StoredImage>();
    images.set(digest, {
      tags: image.tags ?? [],
      pushedAt: new Date(image.pushedAt ?? this.now().toISOString()),
      ...(image.scanStatus && { scanStatus: image.scanStatus }),
      ...(image.lastScanAt && { lastScanAt: new Date(image.lastScanAt) }),
    });
    this.repositories.set(repository, images);
  }

  /** Adds (or replaces, by ARN) a finding as ListFindings returns it. */
  public putFinding(finding: Finding): void {
    this.findings = [...this.findings.filter((f) => f.findingArn !== finding.findingArn), finding];
  }

  /** Inspector2 closes a finding (the fixed image was scanned): ListFindings of ACTIVE ones no longer lists it. */
  public closeFinding(findingArn: string): void {
    this.findings = this.findings.map((f) => (f.findingArn === findingArn ? { ...f, status: 'CLOSED' } : f));
  }

  public ecrClient(): ECRClient {
    const send: Send = async (command) => {
      this.count(command);
      if (command instanceof DescribeRepositoriesCommand) {
        const names = [...this.repositories.keys()].sort();
        return this.page(names.map((name) => ({ repositoryName: name, repositoryArn: `arn:aws:ecr:${this.location.region}:${this.location.account}:repository/${name}` })), command.input.nextToken, command.input.maxResults, ECR_PAGE_SIZE, 'repositories');
      }
      if (command instanceof DescribeImagesCommand) {
        const images = this.repositories.get(command.input.repositoryName ?? '');
        if (!images) throw new RepositoryNotFoundException({ message: `repository ${command.input.repositoryName} not found`, $metadata: {} });
        const details = [...images].map(([digest, i]) => ({
          repositoryName: command.input.repositoryName,
          imageDigest: digest,
          ...(i.tags.length > 0 && { imageTags: i.tags }),
          imagePushedAt: i.pushedAt,
          ...(i.scanStatus && { imageScanStatus: { status: i.scanStatus } }),
          ...(i.lastScanAt && { imageScanFindingsSummary: { imageScanCompletedAt: i.lastScanAt } }),
        }));
        return this.page(details, command.input.nextToken, command.input.maxResults, ECR_PAGE_SIZE, 'imageDetails');
      }
      if (command instanceof StartImageScanCommand) {
        const image = this.repositories.get(command.input.repositoryName ?? '')?.get(command.input.imageId?.imageDigest ?? '');
        if (!image) throw new RepositoryNotFoundException({ message: 'image not found', $metadata: {} });
        const now = this.now();
        if (image.lastScanAt && now.getTime() - image.lastScanAt.getTime() < ECR_SCAN_INTERVAL_MS) {
          throw new LimitExceededException({ message: 'The scan quota per image has been exceeded. Wait and try again.', $metadata: {} });
        }
        // The stand-in scans at once.
        image.lastScanAt = now;
        image.scanStatus = 'COMPLETE';
        return { imageScanStatus: { status: 'IN_PROGRESS' } };
      }
      throw new Error(`the local ECR stand-in does not answer ${(command as object).constructor.name}`);
    };
    return { send } as unknown as ECRClient;
  }

  public inspectorClient(): Inspector2Client {
    const send: Send = async (command) => {
      this.count(command);
      if (!(command instanceof ListFindingsCommand)) throw new Error(`the local Inspector2 stand-in does not answer ${(command as object).constructor.name}`);
      const criteria = command.input.filterCriteria ?? {};
      const equals = (filters: Array<{ comparison?: string; value?: string }> | undefined, value: string | undefined): boolean =>
        !filters || filters.every((f) => f.comparison === 'EQUALS' && f.value === value);
      const matching = this.findings.filter((f) => {
        const image = f.resources?.[0]?.details?.awsEcrContainerImage;
        return (
          equals(criteria.findingStatus, f.status) &&
          equals(criteria.findingType, f.type) &&
          equals(criteria.resourceType, f.resources?.[0]?.type) &&
          equals(criteria.ecrImageRepositoryName, image?.repositoryName) &&
          equals(criteria.ecrImageHash, image?.imageHash)
        );
      });
      return this.page(matching, command.input.nextToken, command.input.maxResults, LIST_FINDINGS_PAGE_SIZE, 'findings');
    };
    return { send } as unknown as Inspector2Client;
  }

  private count(command: unknown): void {
    const name = (command as object).constructor.name.replace(/Command$/, '');
    this.calls[name] = (this.calls[name] ?? 0) + 1;
  }

  /** AWS pages: at most `max` items (a larger maxResults is refused by AWS, here capped), an opaque next token. */
  private page<T>(items: readonly T[], token: string | undefined, maxResults: number | undefined, max: number, key: string): Record<string, unknown> {
    const start = token ? Number(Buffer.from(token, 'base64').toString('utf8')) : 0;
    const size = Math.min(maxResults ?? max, max);
    const end = start + size;
    return { [key]: items.slice(start, end), ...(end < items.length && { nextToken: Buffer.from(String(end)).toString('base64') }) };
  }
}

/**
 * The spokes' ECR and Inspector2 as the rescan reaches them: one LocalScannerBackend per spoke account and region,
 * behind the same session handling as in AWS (AssumedRoleSpokeScanners). The stand-in STS records each AssumeRole
 * (role, session name, duration and the regional endpoint's region) and refuses the roles a test says a spoke refuses.
 */
export class LocalSpokeScanners {
  public readonly scanners: AssumedRoleSpokeScanners;
  private readonly backends = new Map<string, LocalScannerBackend>();
  private readonly refused = new Set<string>();

  public constructor(private readonly calls: RecordedCall[], private readonly now: () => Date = () => new Date()) {
    let sessions = 0;
    this.scanners = new AssumedRoleSpokeScanners({
      assumeRole: async (request) => {
        const refused = this.refused.has(request.roleArn);
        this.calls.push({
          service: 'sts',
          action: 'AssumeRole',
          at: now().toISOString(),
          parameters: { RoleArn: request.roleArn, RoleSessionName: request.sessionName, DurationSeconds: request.durationSeconds, Region: request.region },
          ...(refused && { outcome: 'AccessDenied' }),
        });
        if (refused) throw Object.assign(new Error(`User: local is not authorized to perform: sts:AssumeRole on resource: ${request.roleArn}`), { name: 'AccessDenied' });
        sessions += 1;
        return { accessKeyId: `ASIARESCAN${sessions}`, secretAccessKey: 'local', sessionToken: 'local', expiration: new Date(now().getTime() + request.durationSeconds * 1000) };
      },
      clients: (session) => {
        const backend = this.backend(session);
        return { ecr: new EcrRegistry(backend.ecrClient()), inspector: new InspectorFindings(backend.inspectorClient()) };
      },
      now,
    });
  }

  /** The registry and Inspector2 of a spoke account and region (empty until a test adds to it). */
  public backend(location: RegistryLocation): LocalScannerBackend {
    const key = `${location.account}/${location.region}`;
    let backend = this.backends.get(key);
    if (!backend) this.backends.set(key, (backend = new LocalScannerBackend(this.now, { account: location.account, region: location.region })));
    return backend;
  }

  /** From now on AssumeRole of this role fails, as when the spoke stack is not deployed or its trust does not admit the rescan. */
  public refuse(roleArn: string): void {
    this.refused.add(roleArn);
  }
}

/** The rescan's services in the local runtime; a test points `registry` at a real registry on loopback. */
export class LocalScanners implements RescanServices {
  public readonly backend: LocalScannerBackend;
  public readonly ecr: EcrRegistry;
  public readonly inspector: InspectorFindings;
  public readonly versions: VersionHistory;
  /** The spokes' registries, swept through their hub-access roles. */
  public readonly spokeScanners: LocalSpokeScanners;
  public readonly spokes: AssumedRoleSpokeScanners;
  public settings: RescanSettings;
  public registry: RescanServices['registry'] = {
    resolveDigest: async (ref: ImageRef) => {
      throw new RegistryUnavailableError(ref.registry, `no upstream registry is reachable locally (set the local scanners' registry to resolve ${formatImageRef(ref)})`);
    },
  };

  public constructor(props: { readonly client: DynamoDBClient; readonly tableName: string; readonly config: PatchlineConfig; readonly now?: () => Date; readonly calls?: RecordedCall[] }) {
    const config = props.config;
    this.backend = new LocalScannerBackend(props.now, config.organization?.hub ?? { account: LOCAL_ACCOUNT, region: LOCAL_REGION });
    this.spokeScanners = new LocalSpokeScanners(props.calls ?? [], props.now);
    this.spokes = this.spokeScanners.scanners;
    this.ecr = new EcrRegistry(this.backend.ecrClient());
    this.inspector = new InspectorFindings(this.backend.inspectorClient());
    this.versions = new DynamoVersionHistoryStore({ client: props.client, tableName: props.tableName });
    this.settings = {
      repositories: props.config.repositories,
      scanningMode: props.config.scanning.mode,
      maxScanAgeDays: DEFAULT_MAX_SCAN_AGE_DAYS,
      // The registry the rescan reads is the hub's (ECR_ACCOUNT/AWS_REGION of the hub stack in AWS).
      account: props.config.organization?.hub.account ?? LOCAL_ACCOUNT,
      region: props.config.organization?.hub.region ?? LOCAL_REGION,
      // As the stack sets SPOKE_REPOSITORIES: each spoke's repositories, or the top-level ones.
      spokes: (config.organization?.spokes ?? []).map((s) => ({ account: s.account, region: s.region, repositories: [...(s.repositories ?? config.repositories)] })),
    };
  }
}

const bound = new WeakMap<HandlerDependencies, LocalScanners>();

/** Creates the local scanners of one runtime (its table, its config), found again by its dependencies. */
export function bindLocalScanners(
  deps: HandlerDependencies,
  props: { readonly client: DynamoDBClient; readonly tableName: string; readonly config: PatchlineConfig; readonly calls?: RecordedCall[] },
): LocalScanners {
  const scanners = new LocalScanners({ ...props, now: () => deps.now() });
  bound.set(deps, scanners);
  return scanners;
}

export class LocalScannersNotBoundError extends Error {
  public readonly code = 'LOCAL_SCANNERS_NOT_BOUND';
  public constructor() {
    super('no local scanners are bound to these handler dependencies (bindLocalScanners is called when a LocalRuntime starts)');
    this.name = 'LocalScannersNotBoundError';
  }
}

export function localScannersFor(deps: HandlerDependencies): LocalScanners {
  const scanners = bound.get(deps);
  if (!scanners) throw new LocalScannersNotBoundError();
  return scanners;
}
