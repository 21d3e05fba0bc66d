import { existsSync } from 'fs';
import { compareSeverity, Severity } from '../../lambdas/domain/finding';
import { isDigest, isRepositoryName, parseImageRef } from '../../lambdas/domain/image-ref';
import { Tier } from '../../lambdas/domain/lineage';
import { gateImage, GateViolation, InvalidPolicyError, parsePolicy, Policy } from '../../lambdas/domain/policy';
import { parseRegistryKey, RegistryScope, UnconfiguredRegistryError } from '../../lambdas/domain/registry-scope';
import { policyFromConfig } from '../../lambdas/handlers/finding-received';
import { ExceptionStore, FindingStore } from '../../lambdas/store/finding-store';
import { PolicyBlockedError, UsageError } from '../cli-error';
import { loadConfig, readJson } from '../input-files';
import { openStore } from '../store-session';

export interface GateOptions {
  /** The image digest to check; @default - the digest in IMAGE, else the image's current version in the store */
  readonly digest?: string;
  /** A policy JSON file (PolicySchema); @default - the policy of `config` */
  readonly policy?: string;
  readonly config: string;
  readonly table?: string;
  readonly now?: Date;
}

/**
 * `enterprise/python-311`, `enterprise/python-311:1.4`, `…@sha256:…` or a full ECR URI → the image key (as the lineage
 * and the finding store key it) and digest. An ECR URI is keyed through the registry scope: a spoke's image by its
 * registry-qualified key, the hub's (or a single account's) by its bare repository; an unconfigured registry is refused.
 */
function parseTarget(image: string, scope: () => RegistryScope): { key: string; digest?: string } {
  const [name, digest] = image.split('@');
  const withoutTag = name.replace(/:[^/:]+$/, '');
  const registry = parseRegistryKey(withoutTag);
  if (registry) {
    try {
      return { key: scope().keyOf(registry.account, registry.region, registry.repository), ...(digest && { digest }) };
    } catch (error) {
      if (error instanceof UnconfiguredRegistryError) throw new UsageError(`gate: ${error.message}`, { cause: error });
      throw error;
    }
  }
  if (isRepositoryName(withoutTag)) return { key: withoutTag, ...(digest && { digest }) };
  try {
    const ref = parseImageRef(image);
    return { key: ref.repository, ...(ref.digest && { digest: ref.digest }) };
  } catch (error) {
    throw new UsageError(`gate: ${(error as Error).message}`, { cause: error });
  }
}

/** The hub and spokes of the config's organization; with --policy and no config file, a single account. */
function registryScope(options: GateOptions): RegistryScope {
  if (options.policy && !existsSync(options.config)) return RegistryScope.singleAccount();
  return RegistryScope.forOrganization(loadConfig(options.config).organization);
}

function loadPolicy(options: GateOptions): Policy {
  try {
    return options.policy ? parsePolicy(readJson(options.policy, 'policy file')) : policyFromConfig(loadConfig(options.config));
  } catch (error) {
    if (error instanceof InvalidPolicyError) throw new UsageError(`${options.policy}: ${error.message}`, { cause: error });
    throw error;
  }
}

function line(v: GateViolation): string {
  return `  - ${v.finding.severity} ${v.finding.vulnerabilityId}: ${v.decision.reason}`;
}

/**
 * The build-time gate: passes when no stored finding of the image digest calls for action under the policy (stored
 * exceptions apply); throws PolicyBlockedError (exit 1) with every reason otherwise.
 */
export async function gateCommand(image: string, options: GateOptions): Promise<string> {
  const target = parseTarget(image, () => registryScope(options));
  const policy = loadPolicy(options);
  const store = await openStore({ table: options.table });
  try {
    const digest = options.digest ?? target.digest ?? (await store.lineage.currentVersion(target.key))?.digest;
    if (!digest) throw new UsageError(`gate: no digest for ${target.key}: pass IMAGE@sha256:… or --digest (no pushed version is recorded)`);
    if (!isDigest(digest)) throw new UsageError(`gate: ${JSON.stringify(digest)} is not an image digest (sha256:<64 hex>)`);
    const findings = new FindingStore({ client: store.client, tableName: store.tableName });
    const exceptions = await new ExceptionStore({ client: store.client, tableName: store.tableName }).list();
    const node = await store.lineage.getImage(target.key);
    const stored = await findings.forDigest(target.key, digest);
    const now = options.now ?? new Date();
    const result = gateImage(stored, { image: target.key, tier: node?.tier ?? Tier.APPLICATION }, { ...policy, exceptions: [...policy.exceptions, ...exceptions] }, now);
    const reasons = result.violations.map(line);
    // Basic scanning names no CVE: its counts at or above the threshold block on their own (no exception can apply).
    const scan = stored.length === 0 ? await findings.getScan(target.key, digest) : undefined;
    if (scan) {
      for (const [severity, count] of Object.entries(scan.severityCounts)) {
        if (count > 0 && severity !== 'UNDEFINED' && compareSeverity(severity as Severity, policy.severityThreshold) >= 0) {
          reasons.push(`  - ${count} ${severity} finding(s) in the basic scan of ${scan.scannedAt} (threshold ${policy.severityThreshold})`);
        }
      }
    }
    const subject = `${target.key}@${digest}`;
    const waived = result.excepted.map((v) => `  ~ ${v.finding.severity} ${v.finding.vulnerabilityId}: ${v.decision.reason}`);
    if (reasons.length > 0) {
      throw new PolicyBlockedError([`gate: ${subject} is blocked by ${reasons.length} finding(s):`, ...reasons, ...(waived.length > 0 ? ['waived:', ...waived] : [])].join('\n'));
    }
    const checked = scan ? 'its basic scan' : `${stored.length} stored finding(s)`;
    return [`gate: ${subject} passes (${checked} checked, threshold ${policy.severityThreshold})`, ...(waived.length > 0 ? ['waived:', ...waived] : [])].join('\n');
  } finally {
    await store.close();
  }
}
