import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECRClient } from '@aws-sdk/client-ecr';
import { Inspector2Client } from '@aws-sdk/client-inspector2';
import { EcrRegistry } from '../aws/ecr-registry';
import { InspectorFindings } from '../aws/inspector-findings';
import { OciRegistryClient } from '../aws/oci-registry';
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
}

/** Used when the deployment does not set MAX_SCAN_AGE_DAYS. */
export const DEFAULT_MAX_SCAN_AGE_DAYS = 7;

let fromEnvironment: RescanServices | undefined;

/**
 * The Lambda's services: REPOSITORIES (JSON list), SCANNING_MODE, MAX_SCAN_AGE_DAYS, ECR_ACCOUNT, AWS_REGION, and
 * REGISTRY_ENDPOINTS (JSON registry → base URL, e.g. an ECR pull-through cache) for the upstream watch.
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
      },
    };
  }
  return fromEnvironment;
}
