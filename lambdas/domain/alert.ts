import { isDigest } from './image-ref';
import { compareSeverity, Severity, UNSAFE_CHARACTER, VulnerabilityIdSchema } from './finding';

/**
 * Owner alerts, rendered for SNS: a subject (email), a readable body, a JSON document for machine subscribers and
 * message attributes that subscriptions filter on (`owner`, `severity`, `image`, `kind`). Every value that comes
 * from a finding or a lineage file is sanitized here: control and invisible characters go, lengths are capped.
 */

export const AlertKind = {
  REBUILD_STARTED: 'REBUILD_STARTED',
  UPSTREAM_VULNERABLE: 'UPSTREAM_VULNERABLE',
  VENDOR_VULNERABLE: 'VENDOR_VULNERABLE',
  STILL_VULNERABLE: 'STILL_VULNERABLE',
  EXCEPTION_EXPIRED: 'EXCEPTION_EXPIRED',
  DIGEST: 'DIGEST',
} as const;
export type AlertKind = (typeof AlertKind)[keyof typeof AlertKind];

const KIND_LABEL: Readonly<Record<AlertKind, string>> = {
  REBUILD_STARTED: 'rebuild started',
  UPSTREAM_VULNERABLE: 'vulnerable upstream base',
  VENDOR_VULNERABLE: 'vulnerable vendor image',
  STILL_VULNERABLE: 'still vulnerable after rebuild',
  EXCEPTION_EXPIRED: 'exception expired',
  DIGEST: 'vulnerability digest',
};

/** SNS: a subject is ASCII, one line, "less than 100 characters". */
export const MAX_SUBJECT_LENGTH = 99;
/** Filter-policy values stay short; SNS itself allows far more. */
export const MAX_ATTRIBUTE_LENGTH = 256;
export const MAX_BODY_LENGTH = 16_000;
const MAX_FIELD_LENGTH = 300;
const MAX_LISTED = 20;
const OWNER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const UNSAFE_GLOBAL = new RegExp(UNSAFE_CHARACTER.source, 'gu');

export class InvalidAlertError extends Error {
  public readonly code = 'INVALID_ALERT';
  public constructor(problem: string, options?: { cause?: unknown }) {
    super(`invalid alert: ${problem}`, options);
    this.name = 'InvalidAlertError';
  }
}

/** One line of safe text: unsafe characters removed, whitespace runs collapsed, capped with an ellipsis. */
export function sanitizeText(value: unknown, max: number = MAX_FIELD_LENGTH): string {
  const text = String(value ?? '')
    .replace(/[\r\n\t\v\f]+/g, ' ')
    .replace(UNSAFE_GLOBAL, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (text.length <= max) return text;
  // Cut on a code point boundary: half a surrogate pair is itself unsafe.
  const cut = text.slice(0, Math.max(0, max - 1)).replace(/[\uD800-\uDBFF]$/, '');
  return `${cut}…`;
}

/** SNS subjects must be ASCII: anything else becomes '?'. */
function asciiSubject(value: string): string {
  const ascii = sanitizeText(value, 10_000).replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= MAX_SUBJECT_LENGTH ? ascii : `${ascii.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}

export interface AlertPackage {
  readonly name: string;
  readonly installedVersion: string;
  readonly fixedVersion?: string;
}

export interface AlertOrigin {
  readonly image: string;
  readonly internal: boolean;
  /** `observed` or `inferred`, from the origin attribution. */
  readonly evidence?: string;
}

export interface FindingAlertInput {
  readonly kind: Exclude<AlertKind, typeof AlertKind.DIGEST>;
  readonly owner: string;
  readonly image: string;
  readonly digest?: string;
  readonly vulnerabilityId: string;
  readonly severity: Severity;
  readonly cvss?: number;
  readonly packages?: readonly AlertPackage[];
  readonly origin?: AlertOrigin;
  /** What Patchline did or will do, in words ("rebuilding enterprise/python-311 and 3 images below it"). */
  readonly action?: string;
  readonly campaignId?: string;
  /** For EXCEPTION_EXPIRED: the exception that ended. */
  readonly exception?: { readonly approver: string; readonly expiresAt: string; readonly reason: string };
}

export interface DigestEntry {
  readonly image: string;
  readonly vulnerabilityId: string;
  readonly severity: Severity;
  readonly status?: string;
}

/** An image of the owner's built from an older version of its base than the newest one seen. */
export interface DigestDriftEntry {
  readonly image: string;
  /** The parents it is behind on. */
  readonly parents: readonly string[];
  readonly versionsBehind: number;
  readonly daysBehind: number;
}

export interface DigestAlertInput {
  readonly kind: typeof AlertKind.DIGEST;
  readonly owner: string;
  /** Open vulnerabilities; a digest has at least one of these or one drifted image. */
  readonly entries: readonly DigestEntry[];
  /** The owner's images that are behind their base images. */
  readonly drifted?: readonly DigestDriftEntry[];
  /** Shown in the subject and the body ("2025-06-30"). */
  readonly period?: string;
}

export type AlertInput = FindingAlertInput | DigestAlertInput;

export interface SnsStringAttribute {
  readonly DataType: 'String';
  readonly StringValue: string;
}

export interface Alert {
  readonly owner: string;
  readonly kind: AlertKind;
  /** The image, or `*` for a digest that spans images. */
  readonly image: string;
  readonly digest?: string;
  /** The vulnerability, or `*` for a digest. */
  readonly vulnerabilityId: string;
  /** For a digest: the most severe entry. */
  readonly severity: Severity;
  readonly subject: string;
  readonly body: string;
  /** The same facts as a JSON document, for machine subscribers (SQS, chat relays). */
  readonly json: string;
  readonly messageAttributes: {
    readonly owner: SnsStringAttribute;
    readonly severity: SnsStringAttribute;
    readonly image: SnsStringAttribute;
    readonly kind: SnsStringAttribute;
  };
}

function attribute(value: string): SnsStringAttribute {
  // SNS refuses an empty StringValue.
  return { DataType: 'String', StringValue: sanitizeText(value, MAX_ATTRIBUTE_LENGTH) || '-' };
}

function checkOwner(owner: string): string {
  if (typeof owner !== 'string' || !OWNER_ID.test(owner)) {
    throw new InvalidAlertError(`owner ${JSON.stringify(sanitizeText(owner, 64))} is not an owner id (1-64 letters, digits, ".", "_" or "-")`);
  }
  return owner;
}

function checkSeverity(severity: Severity): Severity {
  if (!Object.values(Severity).includes(severity)) {
    throw new InvalidAlertError(`severity ${JSON.stringify(sanitizeText(severity, 32))} is not one of ${Object.values(Severity).join(', ')}`);
  }
  return severity;
}

function packageLine(p: AlertPackage): string {
  const fixed = p.fixedVersion ? sanitizeText(p.fixedVersion, 128) : 'no fixed version yet';
  return `${sanitizeText(p.name, 256)} ${sanitizeText(p.installedVersion, 128)} → ${fixed}`;
}

function listed<T>(items: readonly T[], render: (item: T) => string): string[] {
  const lines = items.slice(0, MAX_LISTED).map((item) => `  - ${render(item)}`);
  if (items.length > MAX_LISTED) lines.push(`  … and ${items.length - MAX_LISTED} more`);
  return lines;
}

function capBody(lines: readonly string[]): string {
  const body = lines.join('\n');
  return body.length <= MAX_BODY_LENGTH ? body : `${body.slice(0, MAX_BODY_LENGTH - 12)}\n…(cut)`;
}

function defaultAction(input: FindingAlertInput, image: string, origin: string | undefined): string {
  switch (input.kind) {
    case AlertKind.REBUILD_STARTED:
      return `rebuild of ${origin ?? image} and the images below it started`;
    case AlertKind.UPSTREAM_VULNERABLE:
      return `the fix has to come from the upstream image ${origin ?? '(unknown)'}; Patchline watches it and rebuilds ${image} when it is updated`;
    case AlertKind.VENDOR_VULNERABLE:
      return 'vendor (COTS) image: ask the vendor for a fixed release; Patchline never rebuilds it';
    case AlertKind.STILL_VULNERABLE:
      return `${image} was rebuilt and still carries the vulnerability`;
    case AlertKind.EXCEPTION_EXPIRED:
      return 'the exception no longer applies: the finding is handled by the policy again';
  }
}

function buildFindingAlert(input: FindingAlertInput): Alert {
  const owner = checkOwner(input.owner);
  const severity = checkSeverity(input.severity);
  const image = sanitizeText(input.image, MAX_FIELD_LENGTH);
  if (!image) throw new InvalidAlertError('image is empty');
  const vulnerability = VulnerabilityIdSchema.safeParse(input.vulnerabilityId);
  if (!vulnerability.success) {
    throw new InvalidAlertError(`vulnerability id ${JSON.stringify(sanitizeText(input.vulnerabilityId, 64))} is not valid`, { cause: vulnerability.error });
  }
  const vulnerabilityId = vulnerability.data;
  // A digest that is not a digest is dropped, never shown: it could be anything.
  const digest = input.digest !== undefined && isDigest(input.digest) ? input.digest : undefined;
  const origin = input.origin ? sanitizeText(input.origin.image) : undefined;
  const action = input.action !== undefined ? sanitizeText(input.action, 1000) : defaultAction(input, image, origin);
  const campaignId = input.campaignId !== undefined ? sanitizeText(input.campaignId, 128) : undefined;
  const cvss = typeof input.cvss === 'number' && Number.isFinite(input.cvss) ? input.cvss : undefined;
  const packages = (input.packages ?? []).slice(0, 100);

  const subject = asciiSubject(`Patchline: ${severity} ${vulnerabilityId} in ${image} - ${KIND_LABEL[input.kind]}`);
  const lines = [
    `Patchline: ${KIND_LABEL[input.kind]}`,
    '',
    `Image: ${image}${digest ? `@${digest}` : ''}`,
    `Vulnerability: ${vulnerabilityId} (${severity}${cvss !== undefined ? `, CVSS ${cvss}` : ''})`,
  ];
  if (packages.length > 0) lines.push('Packages (installed → fixed):', ...listed(packages, packageLine));
  if (origin) {
    const where = input.origin!.internal ? 'internal' : 'external';
    const evidence = input.origin!.evidence ? `, ${sanitizeText(input.origin!.evidence, 32)}` : '';
    lines.push(`Origin: ${origin} (${where}${evidence})`);
  }
  lines.push(`Action: ${action}`);
  if (campaignId) lines.push(`Campaign: ${campaignId}`);
  if (input.exception) {
    lines.push(
      `Exception: approved by ${sanitizeText(input.exception.approver, 128)}, expired ${sanitizeText(input.exception.expiresAt, 64)}`,
      `Exception reason: ${sanitizeText(input.exception.reason, 500)}`,
    );
  }
  lines.push('', `Owner: ${owner}`);

  const json = JSON.stringify({
    kind: input.kind,
    owner,
    image,
    digest,
    vulnerabilityId,
    severity,
    cvss,
    packages: packages.map((p) => ({
      name: sanitizeText(p.name, 256),
      installedVersion: sanitizeText(p.installedVersion, 128),
      fixedVersion: p.fixedVersion !== undefined ? sanitizeText(p.fixedVersion, 128) : undefined,
    })),
    origin: input.origin ? { image: origin, internal: input.origin.internal, evidence: input.origin.evidence && sanitizeText(input.origin.evidence, 32) } : undefined,
    action,
    campaignId,
  });
  return {
    owner,
    kind: input.kind,
    image,
    ...(digest && { digest }),
    vulnerabilityId,
    severity,
    subject,
    body: capBody(lines),
    json,
    messageAttributes: { owner: attribute(owner), severity: attribute(severity), image: attribute(image), kind: attribute(input.kind) },
  };
}

function checkDriftCount(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0) throw new InvalidAlertError(`drift ${what} must be a whole number >= 0, got ${value}`);
  return value;
}

function buildDigestAlert(input: DigestAlertInput): Alert {
  const owner = checkOwner(input.owner);
  const drifted = (input.drifted ?? []).map((d) => ({
    image: sanitizeText(d.image),
    parents: d.parents.map((p) => sanitizeText(p)),
    versionsBehind: checkDriftCount(d.versionsBehind, 'versionsBehind'),
    daysBehind: checkDriftCount(d.daysBehind, 'daysBehind'),
  }));
  if (input.entries.length === 0 && drifted.length === 0) throw new InvalidAlertError('a digest needs at least one entry or one drifted image');
  const entries = input.entries.map((e) => ({
    image: sanitizeText(e.image),
    vulnerabilityId: sanitizeText(e.vulnerabilityId, 128),
    severity: checkSeverity(e.severity),
    ...(e.status !== undefined && { status: sanitizeText(e.status, 32) }),
  }));
  entries.sort((a, b) => compareSeverity(b.severity, a.severity) || a.image.localeCompare(b.image) || a.vulnerabilityId.localeCompare(b.vulnerabilityId));
  drifted.sort((a, b) => b.daysBehind - a.daysBehind || b.versionsBehind - a.versionsBehind || a.image.localeCompare(b.image));
  // Drift alone carries no vulnerability: the digest is then informational (owners filtering on severity still get it
  // only if they subscribe to INFORMATIONAL).
  const severity = entries.length > 0 ? entries[0].severity : Severity.INFORMATIONAL;
  const images = new Set(entries.map((e) => e.image));
  const period = input.period !== undefined ? sanitizeText(input.period, 64) : undefined;
  const findingsPart =
    entries.length > 0
      ? `${entries.length} open vulnerabilit${entries.length === 1 ? 'y' : 'ies'} in ${images.size} image${images.size === 1 ? '' : 's'}`
      : 'no open vulnerabilities';
  const driftPart = drifted.length > 0 ? `, ${drifted.length} image${drifted.length === 1 ? '' : 's'} behind ${drifted.length === 1 ? 'its base' : 'their bases'}` : '';
  const subject = asciiSubject(
    `Patchline: ${findingsPart}${driftPart}${period ? ` (${period})` : ''}${entries.length > 0 ? `, highest ${severity}` : ''}`,
  );
  const lines = [`Patchline: ${KIND_LABEL.DIGEST}${period ? ` for ${period}` : ''}`, ''];
  if (entries.length > 0) {
    lines.push(
      `${entries.length} open vulnerabilities in ${images.size} images, highest ${severity}:`,
      ...listed(entries, (e) => `${e.severity} ${e.vulnerabilityId} in ${e.image}${e.status ? ` (${e.status})` : ''}`),
      '',
    );
  }
  if (drifted.length > 0) {
    lines.push(
      `${drifted.length} image${drifted.length === 1 ? '' : 's'} built from an older base than the newest (rebuild to catch up):`,
      ...listed(drifted, (d) => `${d.image}: ${d.versionsBehind} version${d.versionsBehind === 1 ? '' : 's'} / ${d.daysBehind} day${d.daysBehind === 1 ? '' : 's'} behind ${d.parents.join(', ')}`),
      '',
    );
  }
  lines.push(`Owner: ${owner}`);
  return {
    owner,
    kind: AlertKind.DIGEST,
    image: '*',
    vulnerabilityId: '*',
    severity,
    subject,
    body: capBody(lines),
    json: JSON.stringify({
      kind: AlertKind.DIGEST,
      owner,
      period,
      severity,
      entries: entries.slice(0, 1000),
      total: entries.length,
      drifted: drifted.slice(0, 1000),
      totalDrifted: drifted.length,
    }),
    messageAttributes: { owner: attribute(owner), severity: attribute(severity), image: attribute('*'), kind: attribute(AlertKind.DIGEST) },
  };
}

export function buildAlert(input: AlertInput): Alert {
  if (!Object.values(AlertKind).includes(input.kind)) {
    throw new InvalidAlertError(`kind ${JSON.stringify(sanitizeText(input.kind, 32))} is not one of ${Object.values(AlertKind).join(', ')}`);
  }
  return input.kind === AlertKind.DIGEST ? buildDigestAlert(input) : buildFindingAlert(input);
}

/** The key of the dedup record (stored with a TTL): one alert per image digest, vulnerability and kind. */
export function alertDedupKey(digest: string, vulnerabilityId: string, kind: AlertKind): string {
  if (!isDigest(digest)) throw new InvalidAlertError(`dedup key: ${JSON.stringify(sanitizeText(digest, 80))} is not an image digest`);
  if (!VulnerabilityIdSchema.safeParse(vulnerabilityId).success) {
    throw new InvalidAlertError(`dedup key: ${JSON.stringify(sanitizeText(vulnerabilityId, 64))} is not a vulnerability id`);
  }
  if (!Object.values(AlertKind).includes(kind)) throw new InvalidAlertError(`dedup key: ${JSON.stringify(sanitizeText(kind, 32))} is not an alert kind`);
  return `${kind}#${digest}#${vulnerabilityId}`;
}

/** Alert again only when nothing was sent before, or when the severity went up since. */
export function shouldAlertAgain(previous: { readonly severity: Severity } | undefined, current: { readonly severity: Severity }): boolean {
  if (previous === undefined) return true;
  return compareSeverity(current.severity, previous.severity) > 0;
}
