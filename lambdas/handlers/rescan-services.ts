import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECRClient } from '@aws-sdk/client-ecr';
import { Inspector2Client } from '@aws-sdk/client-inspector2';
import { EcrRegistry } from '../aws/ecr-registry';
import { InspectorFindings } from '../aws/inspector-findings';
import { OciRegistryClient } from '../aws/oci-registry';
import { awsSpokeScanners, SpokeScanners } from '../aws/spoke-scanners';
import { z } from 'zod';
import { ScanningMode } from '../domain/config';
import { ImageRef } from '../domain/image-ref';
import { DynamoVersionHistoryStore, VersionHistory } from '../store/version-history-store';
import { requireEnv } from './dependencies';
import { traced } from '../aws/traced-client';

/** What the rescan and the upstream watch reach beyond the table: ECR, Inspector2, upstream registries. */
export interface RescanServices {
  readonly ecr: EcrRegistry;
  readonly inspector: InspectorFindings;
  /** Resolves an external parent's tag to its digest (OciRegistryClient; a stand-in locally). */
  readonly registry: { resolveDigest(ref: ImageRef): Promise<{ readonly digest: string }> };
  readonly versions: VersionHistory;
  readonly settings: RescanSettings;
  /** The spokes' ECR and Inspector2, through their hub-access roles. @default - none: spoke items are refused */
  readonly spokes?: SpokeScanners;
}

const AWS_ACCOUNT = /^\d{12}$/;
const AWS_REGION = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
const REPOSITORY_PATTERN = /^[a-z0-9][a-z0-9._\/-]*\*?$/;

/** A spoke's registry and the repositories the rescan sweeps there (the spoke's own, or the top-level ones). */
export const SpokeRepositoriesSchema = z.strictObject({
  account: z.string().regex(AWS_ACCOUNT, 'an AWS account id is 12 digits'),
  region: z.string().regex(AWS_REGION, 'not an AWS region name (e.g. eu-west-1)'),
  repositories: z.array(z.string().max(256).regex(REPOSITORY_PATTERN, 'not an ECR repository name or prefix*')).min(1),
});
export type SpokeRepositories = z.infer<typeof SpokeRepositoriesSchema>;

/** Environment variable holding the JSON list of SpokeRepositories; absent or `[]`: the hub's registry only. */
export const SPOKE_REPOSITORIES_ENV = 'SPOKE_REPOSITORIES';

export class InvalidSpokeRepositoriesError extends Error {
  public readonly code = 'INVALID_SPOKE_REPOSITORIES';
  public constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(`${SPOKE_REPOSITORIES_ENV} is invalid: ${problems.join('; ')}`, options);
    this.name = 'InvalidSpokeRepositoriesError';
  }
}

/** Parses `SPOKE_REPOSITORIES`; unset or empty is no spoke. */
export function spokeRepositoriesFromEnvironment(value: string | undefined): SpokeRepositories[] {
  if (value === undefined || value === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch (error) {
    throw new InvalidSpokeRepositoriesError([`not JSON (${(error as Error).message})`], { cause: error });
  }
  const parsed = z.array(SpokeRepositoriesSchema).safeParse(raw);
  if (!parsed.success) throw new InvalidSpokeRepositoriesError(parsed.error.issues.map((i) => `${i.path.join('.') || '(list)'}: ${i.message}`), { cause: parsed.error });
  return parsed.data;
}

export interface RescanSettings {
  /** ECR repositories swept (names or prefixes ending in *). */
  readonly repositories: readonly string[];
  readonly scanningMode: ScanningMode;
  /** Basic scanning: an image whose last scan is older than this is scanned again. */
  readonly maxScanAgeDays: number;
  /** Where internal parents are pinned (`<account>.dkr.ecr.<region>…`). */
  readonly account: string;
  readonly region: string;
  /** The spokes swept after the hub, in this order. @default - none */
  readonly spokes?: readonly SpokeRepositories[];
}

/** Used when the deployment does not set MAX_SCAN_AGE_DAYS. */
export const DEFAULT_MAX_SCAN_AGE_DAYS = 7;

let fromEnvironment: RescanServices | undefined;

/**
 * The Lambda's services: REPOSITORIES (JSON list), SCANNING_MODE, MAX_SCAN_AGE_DAYS, ECR_ACCOUNT, AWS_REGION, and
 * REGISTRY_ENDPOINTS (JSON registry → base URL, e.g. an ECR pull-through cache) for the upstream watch, and
 * SPOKE_REPOSITORIES (JSON, see SpokeRepositoriesSchema) for the spokes the rescan sweeps through their roles.
 */
export function rescanServicesFromEnvironment(): RescanServices {
  if (!fromEnvironment) {
    const tableName = requireEnv('TABLE_NAME');
    fromEnvironment = {
      ecr: new EcrRegistry(traced(new ECRClient({}))),
      inspector: new InspectorFindings(traced(new Inspector2Client({}))),
      registry: new OciRegistryClient({ endpoints: JSON.parse(process.env.REGISTRY_ENDPOINTS ?? '{}') as Record<string, string> }),
      versions: new DynamoVersionHistoryStore({ client: traced(new DynamoDBClient({})), tableName }),
      settings: {
        repositories: JSON.parse(requireEnv('REPOSITORIES')) as string[],
        scanningMode: (process.env.SCANNING_MODE ?? ScanningMode.ENHANCED) as ScanningMode,
        maxScanAgeDays: Number(process.env.MAX_SCAN_AGE_DAYS ?? DEFAULT_MAX_SCAN_AGE_DAYS),
        account: requireEnv('ECR_ACCOUNT'),
        region: requireEnv('AWS_REGION'),
        spokes: spokeRepositoriesFromEnvironment(process.env[SPOKE_REPOSITORIES_ENV]),
      },
      spokes: awsSpokeScanners(),
    };
  }
  return fromEnvironment;
}
