import { createHash } from 'node:crypto';
import { z } from 'zod';
import { isDigest, isRepositoryName, isTag } from './image-ref';

/**
 * Vulnerability findings: the EventBridge "Inspector2 Finding" event (enhanced scanning) and the "ECR Image Scan"
 * event (basic scanning), parsed strictly and normalized. Every value that later reaches a DynamoDB key, an alert or
 * a CodeBuild override is checked here, before anything else happens.
 */

export const Severity = {
  CRITICAL: 'CRITICAL',
  HIGH: 'HIGH',
  MEDIUM: 'MEDIUM',
  LOW: 'LOW',
  INFORMATIONAL: 'INFORMATIONAL',
  UNTRIAGED: 'UNTRIAGED',
} as const;
export type Severity = (typeof Severity)[keyof typeof Severity];
export const SeveritySchema = z.enum(Severity);

/**
 * Order for thresholds and escalation. UNTRIAGED (no score from the vendor yet) ranks just above INFORMATIONAL:
 * it is not known to be serious, and it escalates once the vendor scores it.
 */
const SEVERITY_RANK: Readonly<Record<Severity, number>> = {
  INFORMATIONAL: 0,
  UNTRIAGED: 1,
  LOW: 2,
  MEDIUM: 3,
  HIGH: 4,
  CRITICAL: 5,
};

export function severityRank(severity: Severity): number {
  return SEVERITY_RANK[severity];
}

/** Negative when `a` is less severe than `b`. */
export function compareSeverity(a: Severity, b: Severity): number {
  return SEVERITY_RANK[a] - SEVERITY_RANK[b];
}

export const FindingStatus = { ACTIVE: 'ACTIVE', SUPPRESSED: 'SUPPRESSED', CLOSED: 'CLOSED' } as const;
export type FindingStatus = (typeof FindingStatus)[keyof typeof FindingStatus];

export const FixAvailable = { YES: 'YES', NO: 'NO', PARTIAL: 'PARTIAL' } as const;
export type FixAvailable = (typeof FixAvailable)[keyof typeof FixAvailable];

export const ScanStatus = { COMPLETE: 'COMPLETE', FAILED: 'FAILED' } as const;
export type ScanStatus = (typeof ScanStatus)[keyof typeof ScanStatus];

export class InvalidFindingEventError extends Error {
  public readonly code = 'INVALID_FINDING_EVENT';
  public constructor(
    public readonly eventKind: string,
    /** JSON path of the first problem, `$.detail.resources[0].type`. */
    public readonly path: string,
    public readonly problem: string,
    /** Every problem found, `path: problem`. */
    public readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    super(`invalid ${eventKind} event at ${path}: ${problem}${more}`, options);
    this.name = 'InvalidFindingEventError';
  }
}

/** Control, format (bidi overrides, zero-width), private-use, lone-surrogate and line/paragraph-separator characters. */
export const UNSAFE_CHARACTER = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;

export function hasUnsafeCharacters(value: string): boolean {
  return UNSAFE_CHARACTER.test(value);
}

/** Free text from the scanner: bounded, and nothing that can break a log line, a subject or a terminal. */
function safeText(max: number, what: string) {
  return z
    .string()
    .min(1, `${what} is empty`)
    .max(max, `${what} is longer than ${max} characters`)
    .refine((v) => !hasUnsafeCharacters(v), `${what} contains control or invisible characters`);
}

const VULNERABILITY_ID = /^[A-Za-z][A-Za-z0-9]*(?:[-_.:][A-Za-z0-9]+){1,12}$/;
const ACCOUNT_ID = /^\d{12}$/;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
/** The finding id is hex in practice; `{{FINDING_ID}}` is the placeholder of the published sample. */
const FINDING_ARN = /^arn:aws(?:-[a-z]+)*:inspector2:[a-z0-9-]+:\d{12}:finding\/[A-Za-z0-9_{}-]{1,128}$/;
const ECR_IMAGE_ARN = /^arn:aws(?:-[a-z]+)*:ecr:[a-z0-9-]+:(\d{12}):repository\/(.+)\/(sha256:[a-f0-9]{64})$/;
const PACKAGE_MANAGER = /^[A-Z0-9_]{1,32}$/;
const MAX_TAGS = 100;
const MAX_RESOURCES = 10;
const MAX_PACKAGES = 100;

export const VulnerabilityIdSchema = z
  .string()
  .max(128, 'vulnerability id is longer than 128 characters')
  .regex(VULNERABILITY_ID, 'not a vulnerability id (CVE-2024-6119, GHSA-xxxx-xxxx-xxxx, ALAS-2023-123, …)');
export const RepositoryNameSchema = z.string().refine(isRepositoryName, 'not an ECR repository name');
/** sha256 only, never loosened: the digest becomes a key, an execution name and a `BASE_IMAGE@digest` override. */
export const DigestSchema = z.string().refine(isDigest, 'not a sha256:<64 hex> image digest');
export const TagSchema = z.string().refine(isTag, 'not a valid image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})');
const TagsSchema = z.array(TagSchema).max(MAX_TAGS, `more than ${MAX_TAGS} tags`);
const AccountSchema = z.string().regex(ACCOUNT_ID, 'an AWS account id is 12 digits');
const RegionSchema = z.string().regex(REGION, 'not an AWS region');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
/** 2024 format: `Wed Sep 04 16:55:38.411 UTC 2024`. */
const JAVA_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) (\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))? UTC (\d{4})$/;
/** 2021 format: `Dec 3, 2021, 6:02:30 PM`; it names no zone, and Inspector writes UTC. */
const US_DATE = /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}), (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/;

function utc(year: number, month: number, day: number, hour: number, minute: number, second: number, ms = 0): string | undefined {
  if (month < 0 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(Date.UTC(year, month, day, hour, minute, second, ms));
  // Date.UTC rolls Feb 30 over to March; a date that does not round-trip is not a date.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined;
  return date.toISOString();
}

/** An Inspector timestamp in any of the three published formats, as an ISO 8601 UTC string; undefined if none fits. */
export function parseInspectorDate(value: string): string | undefined {
  if (ISO_DATE.test(value)) {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  let m = JAVA_DATE.exec(value);
  if (m) {
    const ms = m[6] ? Number(m[6].padEnd(3, '0')) : 0;
    return utc(Number(m[7]), MONTHS.indexOf(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), ms);
  }
  m = US_DATE.exec(value);
  if (m) {
    const hour12 = Number(m[4]);
    if (hour12 < 1 || hour12 > 12) return undefined;
    const hour = (hour12 % 12) + (m[7] === 'PM' ? 12 : 0);
    return utc(Number(m[3]), MONTHS.indexOf(m[1]), Number(m[2]), hour, Number(m[5]), Number(m[6]));
  }
  return undefined;
}

const InspectorDateSchema = z
  .string()
  .max(64, 'timestamp is longer than 64 characters')
  .transform((value, ctx) => {
    const iso = parseInspectorDate(value);
    if (iso === undefined) {
      ctx.addIssue({ code: 'custom', message: 'not a timestamp (ISO 8601, "Wed Sep 04 16:55:38.411 UTC 2024" or "Dec 3, 2021, 6:02:30 PM")' });
      return z.NEVER;
    }
    return iso;
  });

/**
 * Refuses structures no AWS event has and that could hurt whoever reads the value later: prototype keys, objects
 * that are not plain JSON objects, absurd depth or size (EventBridge caps events at 256 KB).
 */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const MAX_DEPTH = 16;
const MAX_EVENT_CHARS = 256 * 1024;
const MAX_EVENT_VALUES = 50_000;

function checkJsonShape(value: unknown, ctx: z.RefinementCtx): void {
  let chars = 0;
  let values = 0;
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value, path: [] }];
  while (stack.length > 0) {
    const { value: node, path } = stack.pop()!;
    if (++values > MAX_EVENT_VALUES) {
      ctx.addIssue({ code: 'custom', message: `event holds more than ${MAX_EVENT_VALUES} values`, path: [] });
      return;
    }
    if (typeof node === 'string') chars += node.length;
    if (chars > MAX_EVENT_CHARS) {
      ctx.addIssue({ code: 'custom', message: `event is larger than ${MAX_EVENT_CHARS} characters`, path: [] });
      return;
    }
    if (node === null || typeof node !== 'object') continue;
    if (path.length > MAX_DEPTH) {
      ctx.addIssue({ code: 'custom', message: `nested deeper than ${MAX_DEPTH} levels`, path });
      return;
    }
    if (Array.isArray(node)) {
      node.forEach((item, i) => stack.push({ value: item, path: [...path, i] }));
      continue;
    }
    // Some realm's Object.prototype (its own prototype is null) or none: objects from another realm are still JSON.
    const proto = Object.getPrototypeOf(node);
    if (proto !== null && (Object.getPrototypeOf(proto) !== null || Object.prototype.toString.call(node) !== '[object Object]')) {
      ctx.addIssue({ code: 'custom', message: 'not a plain JSON object', path });
      return;
    }
    for (const key of Object.keys(node)) {
      chars += key.length;
      if (FORBIDDEN_KEYS.has(key)) {
        ctx.addIssue({ code: 'custom', message: `forbidden key ${JSON.stringify(key)}`, path: [...path, key] });
        return;
      }
      stack.push({ value: (node as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
}

/** An EventBridge envelope for one `source` / `detail-type`. Unknown top-level keys are ignored (a published sample has one). */
function envelope<D extends z.ZodType>(source: string, detailType: string, detail: D) {
  return z.object({
    version: z.string().max(16).optional(),
    id: safeText(128, 'event id'),
    'detail-type': z.literal(detailType, { error: `detail-type must be "${detailType}"` }),
    source: z.literal(source, { error: `source must be "${source}"` }),
    account: AccountSchema,
    time: InspectorDateSchema,
    region: RegionSchema,
    resources: z.array(z.string().max(2048, 'resource ARN is longer than 2048 characters')).max(MAX_RESOURCES, `more than ${MAX_RESOURCES} resources`),
    detail,
  });
}

const VulnerablePackageSchema = z.object({
  name: safeText(256, 'package name'),
  version: safeText(128, 'package version'),
  epoch: z.number().int().min(0).max(1_000_000).optional(),
  release: z.union([z.literal(''), safeText(128, 'package release')]).optional(),
  packageManager: z.string().regex(PACKAGE_MANAGER, 'not a package manager name (OS, NPM, PYTHONPKG, …)').optional(),
  fixedInVersion: safeText(128, 'fixed version').optional(),
});

const CvssSchema = z.object({ baseScore: z.number().min(0).max(10), version: z.string().max(16) });

const EcrContainerImageSchema = z.object({
  repositoryName: RepositoryNameSchema,
  imageHash: DigestSchema,
  imageTags: TagsSchema.default([]),
  registry: AccountSchema,
});

/** The newer `image` detail object carries the same facts under other names. */
const ImageDetailSchema = z.object({
  repositoryName: RepositoryNameSchema,
  imageDigest: DigestSchema,
  imageTags: TagsSchema.default([]),
  registry: AccountSchema,
});

const ResourceSchema = z.object({
  type: z.literal('AWS_ECR_CONTAINER_IMAGE', { error: 'resource type must be AWS_ECR_CONTAINER_IMAGE (only container image findings are handled)' }),
  id: z.string().max(2048, 'resource id is longer than 2048 characters'),
  details: z.object({
    awsEcrContainerImage: EcrContainerImageSchema.optional(),
    image: ImageDetailSchema.optional(),
  }),
});

const InspectorFindingDetailSchema = z.object({
  awsAccountId: AccountSchema,
  findingArn: z.string().max(512).regex(FINDING_ARN, 'not an Inspector2 finding ARN'),
  type: z.literal('PACKAGE_VULNERABILITY', { error: 'finding type must be PACKAGE_VULNERABILITY' }),
  severity: SeveritySchema,
  status: z.enum(FindingStatus),
  title: safeText(1024, 'title').optional(),
  firstObservedAt: InspectorDateSchema,
  lastObservedAt: InspectorDateSchema,
  updatedAt: InspectorDateSchema.optional(),
  inspectorScore: z.number().min(0).max(10).optional(),
  fixAvailable: z.enum(FixAvailable).optional(),
  packageVulnerabilityDetails: z.object({
    vulnerabilityId: VulnerabilityIdSchema,
    vulnerablePackages: z.array(VulnerablePackageSchema).max(MAX_PACKAGES, `more than ${MAX_PACKAGES} vulnerable packages`),
    cvss: z.array(CvssSchema).max(50, 'more than 50 CVSS scores').optional(),
  }),
  resources: z.array(ResourceSchema).min(1, 'a finding names its image').max(MAX_RESOURCES, `more than ${MAX_RESOURCES} resources`),
});

export const InspectorFindingEventSchema = envelope('aws.inspector2', 'Inspector2 Finding', InspectorFindingDetailSchema);
export type InspectorFindingEvent = z.infer<typeof InspectorFindingEventSchema>;

export const NormalizedPackageSchema = z.object({
  name: safeText(256, 'package name'),
  /** `[epoch:]version[-release]`, as the package manager prints it (`7.76.1-26.el9`). */
  installedVersion: safeText(300, 'installed version'),
  fixedVersion: safeText(128, 'fixed version').optional(),
  packageManager: z.string().regex(PACKAGE_MANAGER).optional(),
});
export type NormalizedPackage = z.infer<typeof NormalizedPackageSchema>;

/** A finding as Patchline stores and reasons about it; also the schema for reading one back from the store. */
export const NormalizedFindingSchema = z.object({
  vulnerabilityId: VulnerabilityIdSchema,
  severity: SeveritySchema,
  cvss: z.number().min(0).max(10).optional(),
  packages: z.array(NormalizedPackageSchema).max(MAX_PACKAGES),
  fixAvailable: z.enum(FixAvailable),
  repository: RepositoryNameSchema,
  digest: DigestSchema,
  tags: TagsSchema,
  account: AccountSchema,
  region: RegionSchema,
  firstObservedAt: z.iso.datetime(),
  lastObservedAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  status: z.enum(FindingStatus),
  findingArn: z.string().regex(FINDING_ARN),
  title: safeText(1024, 'title'),
});
export type NormalizedFinding = z.infer<typeof NormalizedFindingSchema>;

/** Inspector writes "NotAvailable" where no fixed version exists. */
function fixedVersion(value: string | undefined): string | undefined {
  return value === undefined || value === 'NotAvailable' ? undefined : value;
}

/** The older event format has no `fixAvailable`: derive it from the packages' fixed versions. */
function deriveFixAvailable(packages: readonly NormalizedPackage[]): FixAvailable {
  const fixed = packages.filter((p) => p.fixedVersion !== undefined).length;
  if (fixed === 0) return FixAvailable.NO;
  return fixed === packages.length ? FixAvailable.YES : FixAvailable.PARTIAL;
}

/** The Inspector adjusted score when given, else the highest CVSS v3 base score, else the highest of any version. */
function cvssScore(detail: z.infer<typeof InspectorFindingDetailSchema>): number | undefined {
  if (detail.inspectorScore !== undefined) return detail.inspectorScore;
  const scores = detail.packageVulnerabilityDetails.cvss ?? [];
  const v3 = scores.filter((s) => s.version.startsWith('3') || s.version.startsWith('4'));
  const pool = v3.length > 0 ? v3 : scores;
  return pool.length > 0 ? Math.max(...pool.map((s) => s.baseScore)) : undefined;
}

interface ImageFacts {
  repository: string;
  digest: string;
  tags: string[];
}

/** One image per finding: both detail objects, every resource and its ARN must name the same repository and digest. */
function imageOf(detail: z.infer<typeof InspectorFindingDetailSchema>, ctx: z.RefinementCtx): ImageFacts | undefined {
  let found: ImageFacts | undefined;
  const agree = (facts: ImageFacts, path: PropertyKey[]): boolean => {
    if (!found) {
      found = facts;
      return true;
    }
    if (facts.repository === found.repository && facts.digest === found.digest) return true;
    ctx.addIssue({
      code: 'custom',
      path,
      message: `names ${facts.repository}@${facts.digest}, but the finding is for ${found.repository}@${found.digest}`,
    });
    return false;
  };
  for (const [i, resource] of detail.resources.entries()) {
    const base = ['detail', 'resources', i];
    const { awsEcrContainerImage: ecr, image } = resource.details;
    if (!ecr && !image) {
      ctx.addIssue({ code: 'custom', path: [...base, 'details'], message: 'no awsEcrContainerImage or image details' });
      return undefined;
    }
    if (ecr && !agree({ repository: ecr.repositoryName, digest: ecr.imageHash, tags: ecr.imageTags }, [...base, 'details', 'awsEcrContainerImage'])) return undefined;
    if (image && !agree({ repository: image.repositoryName, digest: image.imageDigest, tags: image.imageTags }, [...base, 'details', 'image'])) return undefined;
    const arn = ECR_IMAGE_ARN.exec(resource.id);
    if (!arn) {
      ctx.addIssue({ code: 'custom', path: [...base, 'id'], message: 'not an ECR image ARN (arn:aws:ecr:<region>:<account>:repository/<name>/sha256:<64 hex>)' });
      return undefined;
    }
    if (!agree({ repository: arn[2], digest: arn[3], tags: [] }, [...base, 'id'])) return undefined;
  }
  return found;
}

function normalizeFinding(event: InspectorFindingEvent, ctx: z.RefinementCtx): NormalizedFinding {
  const { detail } = event;
  const image = imageOf(detail, ctx);
  if (!image) return z.NEVER;
  const vulnerability = detail.packageVulnerabilityDetails;
  // Absent values are left out rather than set to undefined: the record goes to DynamoDB as it is.
  const packages: NormalizedPackage[] = vulnerability.vulnerablePackages.map((p) => {
    const fixed = fixedVersion(p.fixedInVersion);
    return {
      name: p.name,
      installedVersion: `${p.epoch ? `${p.epoch}:` : ''}${p.version}${p.release ? `-${p.release}` : ''}`,
      ...(fixed !== undefined && { fixedVersion: fixed }),
      ...(p.packageManager !== undefined && { packageManager: p.packageManager }),
    };
  });
  const cvss = cvssScore(detail);
  return {
    vulnerabilityId: vulnerability.vulnerabilityId,
    severity: detail.severity,
    ...(cvss !== undefined && { cvss }),
    packages,
    fixAvailable: detail.fixAvailable ?? deriveFixAvailable(packages),
    repository: image.repository,
    digest: image.digest,
    tags: image.tags,
    account: detail.awsAccountId,
    region: event.region,
    firstObservedAt: detail.firstObservedAt,
    lastObservedAt: detail.lastObservedAt,
    updatedAt: detail.updatedAt ?? detail.lastObservedAt,
    status: detail.status,
    findingArn: detail.findingArn,
    title: detail.title ?? `${vulnerability.vulnerabilityId} - ${packages.map((p) => p.name).join(', ') || 'unknown package'}`.slice(0, 1024),
  };
}

const FindingEventParser = z
  .unknown()
  .superRefine(checkJsonShape)
  .pipe(InspectorFindingEventSchema)
  .transform(normalizeFinding)
  .pipe(NormalizedFindingSchema);

/** Severity counts of a basic scan; severities absent from the event are 0 (ECR omits them). */
export const SeverityCountsSchema = z.object({
  CRITICAL: z.number().int().min(0),
  HIGH: z.number().int().min(0),
  MEDIUM: z.number().int().min(0),
  LOW: z.number().int().min(0),
  INFORMATIONAL: z.number().int().min(0),
  UNDEFINED: z.number().int().min(0),
});
export type SeverityCounts = z.infer<typeof SeverityCountsSchema>;

const Count = z.number().int('a count is a whole number').min(0).max(1_000_000).default(0);

export const EcrScanEventSchema = envelope(
  'aws.ecr',
  'ECR Image Scan',
  z.object({
    'scan-status': z.enum(ScanStatus),
    'repository-name': RepositoryNameSchema,
    'image-digest': DigestSchema,
    'image-tags': TagsSchema.default([]),
    'finding-severity-counts': z
      .object({ CRITICAL: Count, HIGH: Count, MEDIUM: Count, LOW: Count, INFORMATIONAL: Count, UNDEFINED: Count })
      .default({ CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, INFORMATIONAL: 0, UNDEFINED: 0 }),
  }),
);
export type EcrScanEvent = z.infer<typeof EcrScanEventSchema>;

/** Basic scanning names no CVE, so its event becomes a summary of counts, never findings. */
export const EcrScanSummarySchema = z.object({
  repository: RepositoryNameSchema,
  digest: DigestSchema,
  tags: TagsSchema,
  account: AccountSchema,
  region: RegionSchema,
  scannedAt: z.iso.datetime(),
  status: z.enum(ScanStatus),
  severityCounts: SeverityCountsSchema,
  total: z.number().int().min(0),
  /** The most severe level with a non-zero count; undefined when nothing was found. */
  highestSeverity: z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED']).optional(),
});
export type EcrScanSummary = z.infer<typeof EcrScanSummarySchema>;

const ScanEventParser = z
  .unknown()
  .superRefine(checkJsonShape)
  .pipe(EcrScanEventSchema)
  .transform((event): EcrScanSummary => {
    const counts = event.detail['finding-severity-counts'];
    const order = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'] as const;
    return {
      repository: event.detail['repository-name'],
      digest: event.detail['image-digest'],
      tags: event.detail['image-tags'],
      account: event.account,
      region: event.region,
      scannedAt: event.time,
      status: event.detail['scan-status'],
      severityCounts: counts,
      total: order.reduce((sum, level) => sum + counts[level], 0),
      highestSeverity: order.find((level) => counts[level] > 0),
    };
  });

/** JSON-quotes a value for an error message; invisible characters JSON leaves alone (bidi, zero-width) are escaped too. */
function quote(value: string): string {
  return JSON.stringify(value).replace(new RegExp(UNSAFE_CHARACTER.source, 'gu'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += `.${key}`;
    else out += `[${quote(String(key).slice(0, 64))}]`;
  }
  return out;
}

/** The received value, short and JSON-quoted so that it cannot break a log line. Own properties only. */
function describeReceived(raw: unknown, path: readonly PropertyKey[]): string {
  let value: unknown = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, key)) return 'missing';
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const shown = quote(value.slice(0, 60));
    return value.length > 60 ? `${shown}…(${value.length} chars)` : shown;
  }
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

function invalidEvent(kind: string, error: z.ZodError, raw: unknown): InvalidFindingEventError {
  const problems = error.issues.map((issue) => {
    const received = describeReceived(raw, issue.path);
    const message = issue.message.replace(/[\p{Cc}\p{Cf}]/gu, '');
    return { path: formatPath(issue.path), problem: received === 'missing' && issue.code === 'invalid_type' ? `${message} (missing)` : `${message} (received ${received})` };
  });
  const first = problems[0] ?? { path: '$', problem: 'invalid' };
  return new InvalidFindingEventError(kind, first.path, first.problem, problems.map((p) => `${p.path}: ${p.problem}`), { cause: error });
}

/** Parses and normalizes an EventBridge "Inspector2 Finding" event; throws InvalidFindingEventError. */
export function parseInspectorFindingEvent(event: unknown): NormalizedFinding {
  const parsed = FindingEventParser.safeParse(event);
  if (!parsed.success) throw invalidEvent('Inspector2 Finding', parsed.error, event);
  return parsed.data;
}

/** Parses an EventBridge "ECR Image Scan" (basic scanning) event into a summary; throws InvalidFindingEventError. */
export function parseEcrScanEvent(event: unknown): EcrScanSummary {
  const parsed = ScanEventParser.safeParse(event);
  if (!parsed.success) throw invalidEvent('ECR Image Scan', parsed.error, event);
  return parsed.data;
}

/**
 * A hash of what alerting depends on: the vulnerability, severity, status, fix availability, the packages and the
 * image (digest). Timestamps, scores, tags and vendor text are left out, so a re-sent finding hashes the same.
 */
export function findingContentHash(finding: NormalizedFinding): string {
  const packages = finding.packages
    .map((p) => JSON.stringify([p.name, p.installedVersion, p.fixedVersion ?? null, p.packageManager ?? null]))
    .sort();
  const canonical = JSON.stringify([
    finding.vulnerabilityId,
    finding.severity,
    finding.status,
    finding.fixAvailable,
    finding.repository,
    finding.digest,
    packages,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
