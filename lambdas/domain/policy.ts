import { z } from 'zod';
import {
  compareSeverity,
  FindingStatus,
  FixAvailable,
  hasUnsafeCharacters,
  NormalizedFinding,
  Severity,
  SeveritySchema,
  VulnerabilityIdSchema,
} from './finding';
import { Tier } from './lineage';

/**
 * The vulnerability policy: which findings Patchline acts upon. Evaluation is pure and takes `now`, so an exception
 * stops applying by itself at its expiry, and a re-evaluation at any time gives the same answer.
 */

/** An image key (`apps/payments-api`, `python:3.11`) or a glob: `*` stays inside one path segment, `**` crosses them. */
const IMAGE_PATTERN = /^[A-Za-z0-9._/:@*-]{1,300}$/;

export const ImagePatternSchema = z
  .string()
  .regex(IMAGE_PATTERN, 'an image key or pattern is 1-300 characters: letters, digits, ".", "_", "-", "/", ":", "@" and "*"');

const safeText = (max: number, what: string) =>
  z
    .string()
    .trim()
    .min(1, `${what} is empty`)
    .max(max, `${what} is longer than ${max} characters`)
    .refine((v) => !hasUnsafeCharacters(v), `${what} contains control or invisible characters`);

export const PolicyExceptionSchema = z.strictObject({
  image: ImagePatternSchema,
  vulnerabilityId: VulnerabilityIdSchema,
  reason: safeText(500, 'reason'),
  approver: safeText(128, 'approver'),
  /** An exception always ends: no open-ended waivers. */
  expiresAt: z.iso.datetime({ offset: true, error: 'expiresAt must be an ISO 8601 date-time (2025-06-30T00:00:00Z)' }),
});
export type PolicyException = z.infer<typeof PolicyExceptionSchema>;

export const PolicySchema = z.strictObject({
  /** Findings below this severity are recorded, not acted upon. */
  severityThreshold: SeveritySchema.default(Severity.HIGH),
  /** Act only when the scanner reports a fix (YES or PARTIAL). */
  requireFixAvailable: z.boolean().default(true),
  exceptions: z.array(PolicyExceptionSchema).max(10_000, 'more than 10000 exceptions').default([]),
  /** Images whose vulnerabilities are accepted: the image itself, or the origin the CVE was attributed to. */
  trustedBases: z.array(ImagePatternSchema).max(1_000, 'more than 1000 trusted bases').default([]),
});
export type Policy = z.infer<typeof PolicySchema>;

export class InvalidPolicyError extends Error {
  public readonly code = 'INVALID_POLICY';
  public constructor(public readonly problems: readonly string[], options?: { cause?: unknown }) {
    super(`invalid policy: ${problems.join('; ')}`, options);
    this.name = 'InvalidPolicyError';
  }
}

export function parsePolicy(input: unknown): Policy {
  const parsed = PolicySchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 10).map((i) => `${i.path.map(String).join('.') || '(policy)'}: ${i.message}`);
    throw new InvalidPolicyError(problems, { cause: parsed.error });
  }
  return parsed.data;
}

const patternCache = new Map<string, RegExp>();

/** Glob match of an image key: `apps/*` matches `apps/payments-api`, not `apps/team/api`; `apps/**` matches both. */
export function matchesImagePattern(pattern: string, image: string): boolean {
  let regex = patternCache.get(pattern);
  if (!regex) {
    const source = pattern
      .split(/(\*\*|\*)/)
      .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')))
      .join('');
    regex = new RegExp(`^${source}$`);
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(pattern, regex);
  }
  return regex.test(image);
}

export const PolicyOutcome = {
  ACT: 'ACT',
  INACTIVE: 'INACTIVE',
  EXCEPTED: 'EXCEPTED',
  TRUSTED_BASE: 'TRUSTED_BASE',
  BELOW_THRESHOLD: 'BELOW_THRESHOLD',
  NO_FIX: 'NO_FIX',
} as const;
export type PolicyOutcome = (typeof PolicyOutcome)[keyof typeof PolicyOutcome];

export type PolicyDecision =
  | {
      readonly outcome: typeof PolicyOutcome.ACT;
      readonly reason: string;
      /** An exception that would have matched but has expired: worth an EXCEPTION_EXPIRED alert. */
      readonly expiredException?: PolicyException;
    }
  | { readonly outcome: typeof PolicyOutcome.EXCEPTED; readonly reason: string; readonly exception: PolicyException }
  | {
      readonly outcome: typeof PolicyOutcome.INACTIVE | typeof PolicyOutcome.TRUSTED_BASE | typeof PolicyOutcome.BELOW_THRESHOLD | typeof PolicyOutcome.NO_FIX;
      readonly reason: string;
    };

export interface PolicySubject {
  /** Image key of the image the finding was reported on. */
  readonly image: string;
  readonly tier: Tier;
  /** Image key of the attributed origin, when known: a CVE inherited from a trusted base is accepted too. */
  readonly origin?: string;
}

type PolicyFinding = Pick<NormalizedFinding, 'vulnerabilityId' | 'severity' | 'fixAvailable' | 'status'>;

/**
 * Decides what to do with one finding. Order: a finding that is not ACTIVE needs nothing; then the explicit human
 * decisions (an unexpired exception, a trusted base); then the thresholds (severity, fix available).
 */
export function evaluateFinding(finding: PolicyFinding, image: PolicySubject, policy: Policy, now: Date): PolicyDecision {
  const id = finding.vulnerabilityId;
  if (finding.status !== FindingStatus.ACTIVE) {
    return { outcome: PolicyOutcome.INACTIVE, reason: `${id} is ${finding.status} on ${image.image}` };
  }
  const matching = policy.exceptions.filter((e) => e.vulnerabilityId === id && matchesImagePattern(e.image, image.image));
  const nowMs = now.getTime();
  const active = matching
    .filter((e) => Date.parse(e.expiresAt) > nowMs)
    .sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt))[0];
  if (active) {
    return {
      outcome: PolicyOutcome.EXCEPTED,
      exception: active,
      reason: `${id} on ${image.image} is excepted until ${active.expiresAt} (approved by ${active.approver}: ${active.reason})`,
    };
  }
  const trusted =
    policy.trustedBases.find((p) => matchesImagePattern(p, image.image)) ??
    (image.origin !== undefined ? policy.trustedBases.find((p) => matchesImagePattern(p, image.origin!)) : undefined);
  if (trusted !== undefined) {
    const which = matchesImagePattern(trusted, image.image) ? image.image : `its origin ${image.origin}`;
    return { outcome: PolicyOutcome.TRUSTED_BASE, reason: `${id}: ${which} is a trusted base (${trusted})` };
  }
  if (compareSeverity(finding.severity, policy.severityThreshold) < 0) {
    return {
      outcome: PolicyOutcome.BELOW_THRESHOLD,
      reason: `${id} is ${finding.severity}, below the ${policy.severityThreshold} threshold`,
    };
  }
  if (policy.requireFixAvailable && finding.fixAvailable === FixAvailable.NO) {
    return { outcome: PolicyOutcome.NO_FIX, reason: `${id} has no fix available yet` };
  }
  const expired = matching.sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt))[0];
  const fix = finding.fixAvailable === FixAvailable.PARTIAL ? 'a partial fix' : finding.fixAvailable === FixAvailable.YES ? 'a fix' : 'no fix';
  return {
    outcome: PolicyOutcome.ACT,
    reason: `${id} is ${finding.severity} (threshold ${policy.severityThreshold}) with ${fix} on ${image.image} (${image.tier})${
      expired ? `; its exception expired at ${expired.expiresAt}` : ''
    }`,
    ...(expired && { expiredException: expired }),
  };
}

export interface GateViolation {
  readonly finding: PolicyFinding;
  readonly decision: PolicyDecision;
}

export interface GateResult {
  readonly pass: boolean;
  /** Findings the policy acts upon, most severe first: each blocks the build. */
  readonly violations: readonly GateViolation[];
  /** Findings let through only by an exception, so that a gate report can show what is waived and until when. */
  readonly excepted: readonly GateViolation[];
}

/** The build-time gate: the image passes when no finding calls for action under the policy. */
export function gateImage(findings: readonly PolicyFinding[], image: PolicySubject, policy: Policy, now: Date): GateResult {
  const violations: GateViolation[] = [];
  const excepted: GateViolation[] = [];
  for (const finding of findings) {
    const decision = evaluateFinding(finding, image, policy, now);
    if (decision.outcome === PolicyOutcome.ACT) violations.push({ finding, decision });
    else if (decision.outcome === PolicyOutcome.EXCEPTED) excepted.push({ finding, decision });
  }
  const bySeverity = (a: GateViolation, b: GateViolation): number =>
    compareSeverity(b.finding.severity, a.finding.severity) || a.finding.vulnerabilityId.localeCompare(b.finding.vulnerabilityId);
  return { pass: violations.length === 0, violations: violations.sort(bySeverity), excepted: excepted.sort(bySeverity) };
}
