import { z } from 'zod';
import { PolicySchema } from './policy';

export const Severity = {
  INFORMATIONAL: 'INFORMATIONAL',
  LOW: 'LOW',
  MEDIUM: 'MEDIUM',
  HIGH: 'HIGH',
  CRITICAL: 'CRITICAL',
} as const;
export type Severity = (typeof Severity)[keyof typeof Severity];
const SEVERITIES = Object.values(Severity) as [Severity, ...Severity[]];

export const ScanningMode = { ENHANCED: 'enhanced', BASIC: 'basic' } as const;
export type ScanningMode = (typeof ScanningMode)[keyof typeof ScanningMode];

const OWNER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** ECR repository name, or a prefix pattern ending in `*` (scopes IAM to `repository/prefix*`). */
const REPOSITORY_PATTERN = /^(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?:\/?\*)?$|^\*$/;
const PROJECT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}\*?$/;
/** An ECR tag key (what LineageDiscovery also checks). */
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

/** EventBridge Scheduler expressions: rate(N unit) or a six-field cron(...). */
export function isScheduleExpression(value: string): boolean {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(value);
  if (rate) {
    const n = Number(rate[1]);
    return n > 0 && (n === 1) === !rate[2].endsWith('s');
  }
  const cron = /^cron\((.+)\)$/.exec(value);
  if (!cron) return false;
  const fields = cron[1].trim().split(/\s+/);
  if (fields.length !== 6) return false;
  const field = /^[0-9A-Za-z*?,/#L\-]+$/;
  if (!fields.every((f) => field.test(f))) return false;
  // One of day-of-month / day-of-week must be '?', as EventBridge requires.
  return fields[2] === '?' || fields[4] === '?';
}

const OwnerSchema = z.strictObject({
  /** Where alerts for this owner go; each becomes an SNS subscription filtered on `owner`. */
  email: z.email().optional(),
  /** An HTTPS endpoint (chat webhook relay, ticketing) subscribed with the same filter. */
  https: z.url({ protocol: /^https$/ }).optional(),
  /** Vendor contact: set for the owner of COTS images. */
  vendor: z.boolean().default(false),
});

const AWS_ACCOUNT = /^\d{12}$/;
const AWS_REGION = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
const AccountRegionSchema = z.strictObject({
  account: z.string().regex(AWS_ACCOUNT, 'an AWS account id is 12 digits'),
  region: z.string().regex(AWS_REGION, 'not an AWS region name (e.g. eu-west-1)'),
});

/** Hub and spokes: the hub runs Patchline; each spoke forwards its events to the hub and lets the hub build there. */
export const OrganizationSchema = z
  .strictObject({
    hub: AccountRegionSchema,
    spokes: z
      .array(
        AccountRegionSchema.extend({
          /** ECR repositories of this spoke (names or prefix*); default: the top-level `repositories`. */
          repositories: z.array(z.string().regex(REPOSITORY_PATTERN, 'not an ECR repository name or prefix*')).min(1).optional(),
          /** CodeBuild projects of this spoke (names or prefix*); default: `rebuild.projects`. */
          projects: z.array(z.string().regex(PROJECT_PATTERN, 'not a CodeBuild project name or prefix*')).min(1).optional(),
        }),
      )
      .min(1, 'organization.spokes needs at least one spoke'),
    /** When set, the hub bus admits the whole organization and spoke roles trust only principals inside it. */
    organizationId: z.string().regex(/^o-[a-z0-9]{10,32}$/, 'an organization id is o- followed by 10-32 lowercase letters or digits').optional(),
  })
  .superRefine((org, ctx) => {
    // One stack per account+region: a repeat would collide, and the hub's own region is served by the default bus.
    const seen = new Set<string>();
    org.spokes.forEach((spoke, index) => {
      const where = `${spoke.account}/${spoke.region}`;
      if (spoke.account === org.hub.account && spoke.region === org.hub.region) {
        ctx.addIssue({ code: 'custom', path: ['spokes', index], message: `spoke ${where} is the hub itself` });
      }
      if (seen.has(where)) ctx.addIssue({ code: 'custom', path: ['spokes', index], message: `spoke ${where} is listed twice` });
      seen.add(where);
    });
  });
export type OrganizationConfig = z.infer<typeof OrganizationSchema>;
export type SpokeConfig = OrganizationConfig['spokes'][number];

export const PatchlineConfigSchema = z
  .strictObject({
    /** Owner id → contacts. Every owner named in a lineage must be listed here. */
    owners: z.record(z.string().regex(OWNER_ID, 'an owner id is 1-64 letters, digits, ".", "_" or "-"'), OwnerSchema),
    /** Findings below this severity are recorded, not acted upon. */
    severityThreshold: z.enum(SEVERITIES).default(Severity.HIGH),
    /** Act only when the scanner reports a fix. */
    requireFixAvailable: z.boolean().default(true),
    rebuild: z
      .strictObject({
        /** At most this many CodeBuild rebuilds run at once across all campaigns. */
        concurrency: z.number().int().min(1, 'rebuild.concurrency must be at least 1').max(1000).default(10),
        /** Pushes of one image inside this window coalesce into one campaign. */
        settleWindowSeconds: z.number().int().min(0).max(86_400).default(300),
        /** CodeBuild projects Patchline may start (names, or prefixes ending in *). */
        projects: z.array(z.string().regex(PROJECT_PATTERN, 'not a CodeBuild project name or prefix*')).min(1),
        /** Build duration assumed for an image with no recorded builds (critical-path estimates). */
        defaultBuildSeconds: z.number().int().min(1).default(600),
      })
      .strict(),
    rescan: z
      .strictObject({
        schedule: z
          .string()
          .refine(isScheduleExpression, 'rescan.schedule must be rate(N unit) or cron(min hour dom month dow year) with ? in dom or dow')
          .default('rate(1 day)'),
        /** Basic scanning: an image whose last scan is older than this many days is scanned again; default 7 (RescanWorkflow). */
        maxScanAgeDays: z.number().int().min(1, 'rescan.maxScanAgeDays must be at least 1').max(365, 'rescan.maxScanAgeDays must be at most 365').optional(),
      })
      .default({ schedule: 'rate(1 day)' }),
    scanning: z.strictObject({ mode: z.enum([ScanningMode.ENHANCED, ScanningMode.BASIC]).default(ScanningMode.ENHANCED) }).default({ mode: ScanningMode.ENHANCED }),
    /** ECR repositories Patchline reads (names or prefixes ending in *). */
    repositories: z.array(z.string().regex(REPOSITORY_PATTERN, 'not an ECR repository name or prefix*')).min(1),
    /** Days a (digest, CVE, kind) alert is not repeated. */
    alertDedupDays: z.number().int().min(1).max(365).default(7),
    /** Approved exceptions (image, CVE, reason, approver, expiry) that apply besides those in the store. */
    exceptions: PolicySchema.shape.exceptions,
    /** Images (keys or globs) whose vulnerabilities are accepted: the image itself, or the origin a CVE is attributed to. */
    trustedBases: PolicySchema.shape.trustedBases,
    /** ECR repository tags learn-lineage reads when the lineage names no owner or build project. */
    discovery: z
      .strictObject({
        /** @default 'owner' */
        ownerTagKey: z.string().regex(TAG_KEY, 'an ECR tag key is 1-128 letters, digits, spaces and _.:/=+-@').optional(),
        /** @default 'build-project' */
        buildProjectTagKey: z.string().regex(TAG_KEY, 'an ECR tag key is 1-128 letters, digits, spaces and _.:/=+-@').optional(),
      })
      .optional(),
    /** Operations contact: subscribed by email to the ops topic that every alarm notifies. */
    ops: z.strictObject({ email: z.email().optional() }).optional(),
    /** Hub-and-spoke deployment across accounts/regions; absent: a single-account deployment. */
    organization: OrganizationSchema.optional(),
  })
  .strict();

export type PatchlineConfig = z.infer<typeof PatchlineConfigSchema>;

export class InvalidConfigError extends Error {
  public readonly code = 'INVALID_CONFIG';
  public constructor(source: string, public readonly problems: readonly string[], options?: { cause?: unknown }) {
    super(`${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`, options);
    this.name = 'InvalidConfigError';
  }
}

/** Parses and validates a config document; every problem is reported with its path and the value received. */
export function parseConfig(raw: unknown, source = 'patchline.config.json'): PatchlineConfig {
  const parsed = PatchlineConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(top level)';
      const received = valueAt(raw, issue.path);
      return `${where}: ${issue.message}${received === undefined ? '' : ` (received ${JSON.stringify(received)?.slice(0, 80)})`}`;
    });
    throw new InvalidConfigError(source, problems, { cause: parsed.error });
  }
  return parsed.data;
}

/** Every owner a lineage names must be configured: an alert with nowhere to go is lost. */
export function checkOwnersKnown(config: PatchlineConfig, owners: Iterable<{ image: string; owner?: string }>, source: string): void {
  const problems: string[] = [];
  for (const { image, owner } of owners) {
    if (owner !== undefined && !(owner in config.owners)) {
      problems.push(`image ${image}: owner ${JSON.stringify(owner)} is not in owners (known: ${Object.keys(config.owners).join(', ')})`);
    }
  }
  if (problems.length > 0) throw new InvalidConfigError(source, problems);
}

function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value: unknown = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return typeof value === 'object' ? undefined : value;
}
