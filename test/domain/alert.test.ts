import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  alertDedupKey,
  AlertKind,
  buildAlert,
  FindingAlertInput,
  InvalidAlertError,
  MAX_ATTRIBUTE_LENGTH,
  MAX_BODY_LENGTH,
  sanitizeText,
  shouldAlertAgain,
} from '../../lambdas/domain/alert';
import { parseInspectorFindingEvent } from '../../lambdas/domain/finding';

const EVENTS = join(__dirname, '../../../shared/data/events');
const SAMPLE = parseInspectorFindingEvent(
  JSON.parse(
    readFileSync(join(EVENTS, 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json'), 'utf8'),
  ),
);

const DIGEST = `sha256:${'d'.repeat(64)}`;
const UBI = 'registry.access.redhat.com/ubi9/python-311:1-34';

function input(change: Partial<FindingAlertInput> = {}): FindingAlertInput {
  return {
    kind: AlertKind.REBUILD_STARTED,
    owner: 'platform-team',
    image: 'enterprise/python-311',
    digest: DIGEST,
    vulnerabilityId: 'CVE-2023-38545',
    severity: 'CRITICAL',
    cvss: 9.8,
    packages: [{ name: 'curl', installedVersion: '7.76.1-26.el9', fixedVersion: '7.76.1-26.el9_3.2' }],
    origin: { image: UBI, internal: false, evidence: 'observed' },
    action: 'rebuild of enterprise/python-311 and 3 images below it started',
    campaignId: 'c-20240901-01',
    ...change,
  };
}

/** Nothing unsafe in a value meant for one line. */
const ONE_LINE_SAFE = /^[^\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]*$/u;

describe('Function: buildAlert', () => {
  it('renders a rebuild alert: subject, body with every fact, JSON and SNS message attributes', () => {
    const alert = buildAlert(input());
    expect(alert).toMatchObject({
      owner: 'platform-team',
      kind: 'REBUILD_STARTED',
      image: 'enterprise/python-311',
      digest: DIGEST,
      vulnerabilityId: 'CVE-2023-38545',
      severity: 'CRITICAL',
      subject: 'Patchline: CRITICAL CVE-2023-38545 in enterprise/python-311 - rebuild started',
      messageAttributes: {
        owner: { DataType: 'String', StringValue: 'platform-team' },
        severity: { DataType: 'String', StringValue: 'CRITICAL' },
        image: { DataType: 'String', StringValue: 'enterprise/python-311' },
        kind: { DataType: 'String', StringValue: 'REBUILD_STARTED' },
      },
    });
    expect(alert.body.split('\n')).toEqual([
      'Patchline: rebuild started',
      '',
      `Image: enterprise/python-311@${DIGEST}`,
      'Vulnerability: CVE-2023-38545 (CRITICAL, CVSS 9.8)',
      'Packages (installed → fixed):',
      '  - curl 7.76.1-26.el9 → 7.76.1-26.el9_3.2',
      `Origin: ${UBI} (external, observed)`,
      'Action: rebuild of enterprise/python-311 and 3 images below it started',
      'Campaign: c-20240901-01',
      '',
      'Owner: platform-team',
    ]);
    expect(JSON.parse(alert.json)).toEqual({
      kind: 'REBUILD_STARTED',
      owner: 'platform-team',
      image: 'enterprise/python-311',
      digest: DIGEST,
      vulnerabilityId: 'CVE-2023-38545',
      severity: 'CRITICAL',
      cvss: 9.8,
      packages: [{ name: 'curl', installedVersion: '7.76.1-26.el9', fixedVersion: '7.76.1-26.el9_3.2' }],
      origin: { image: UBI, internal: false, evidence: 'observed' },
      action: 'rebuild of enterprise/python-311 and 3 images below it started',
      campaignId: 'c-20240901-01',
    });
  });

  it('renders an alert from a parsed finding (the real sample), with a default action per kind', () => {
    const alert = buildAlert({
      kind: AlertKind.VENDOR_VULNERABLE,
      owner: 'observability-vendor',
      image: SAMPLE.repository,
      digest: SAMPLE.digest,
      vulnerabilityId: SAMPLE.vulnerabilityId,
      severity: SAMPLE.severity,
      packages: SAMPLE.packages,
    });
    expect(alert.subject).toBe('Patchline: MEDIUM CVE-2024-6119 in inspector2 - vulnerable vendor image');
    expect(alert.body).toContain('  - libssl3t64 3.0.13-0ubuntu3.2 → 0:3.0.13-0ubuntu3.4');
    expect(alert.body).toContain('  - openssl 3.0.13-0ubuntu3.2 → 0:3.0.13-0ubuntu3.4');
    expect(alert.body).toContain('Action: vendor (COTS) image: ask the vendor for a fixed release; Patchline never rebuilds it');
    expect(alert.body).not.toContain('Campaign:');
  });

  it.each([
    [AlertKind.UPSTREAM_VULNERABLE, `the fix has to come from the upstream image ${UBI}`],
    [AlertKind.STILL_VULNERABLE, 'enterprise/python-311 was rebuilt and still carries the vulnerability'],
    [AlertKind.EXCEPTION_EXPIRED, 'the exception no longer applies'],
    [AlertKind.REBUILD_STARTED, `rebuild of ${UBI} and the images below it started`],
  ] as const)('writes the default action of %s', (kind, action) => {
    expect(buildAlert(input({ kind, action: undefined })).body).toContain(`Action: ${action}`);
  });

  it('names the expired exception', () => {
    const alert = buildAlert(input({ kind: AlertKind.EXCEPTION_EXPIRED, exception: { approver: 'security-team', expiresAt: '2025-06-01T00:00:00Z', reason: 'not reachable' } }));
    expect(alert.body).toContain('Exception: approved by security-team, expired 2025-06-01T00:00:00Z');
    expect(alert.body).toContain('Exception reason: not reachable');
  });

  it('says when no fixed version exists and lists at most 20 packages', () => {
    const packages = Array.from({ length: 25 }, (_, i) => ({ name: `lib${i}`, installedVersion: '1.0' }));
    const body = buildAlert(input({ packages })).body;
    expect(body).toContain('  - lib0 1.0 → no fixed version yet');
    expect(body).toContain('  … and 5 more');
    expect(body).not.toContain('lib20 ');
  });

  it('keeps hostile values out of the subject, the body lines and the attributes', () => {
    const alert = buildAlert(
      input({
        image: 'apps/evil\r\nBcc: everyone@example.com\u202e\u0000',
        action: 'rebuild\n\nPlease send credentials to attacker',
        campaignId: 'c-1\u001b[31m',
        packages: [{ name: 'curl\nFAKE LINE', installedVersion: '1\u200b.0', fixedVersion: '2.0\r' }],
        origin: { image: 'x\ny', internal: true },
      }),
    );
    expect(alert.subject).not.toMatch(/[\r\n]/);
    expect(alert.subject).toMatch(/^[\x20-\x7e]+$/);
    expect(alert.image).toBe('apps/evil Bcc: everyone@example.com');
    for (const value of Object.values(alert.messageAttributes)) expect(value.StringValue).toMatch(ONE_LINE_SAFE);
    const lines = alert.body.split('\n');
    expect(lines).toContain('Image: apps/evil Bcc: everyone@example.com@' + DIGEST);
    expect(lines).toContain('Action: rebuild Please send credentials to attacker');
    expect(lines).toContain('Campaign: c-1[31m');
    expect(lines).toContain('  - curl FAKE LINE 1.0 → 2.0');
    expect(lines).toContain('Origin: x y (internal)');
    expect(lines.every((line) => ONE_LINE_SAFE.test(line))).toBe(true);
    expect(() => JSON.parse(alert.json)).not.toThrow();
  });

  it('caps the subject below 100 ASCII characters and the attributes at 256', () => {
    const long = `apps/${'a'.repeat(400)}`;
    const alert = buildAlert(input({ image: long, vulnerabilityId: 'GHSA-abcd-efgh-ijkm' }));
    expect(alert.subject.length).toBeLessThanOrEqual(99);
    expect(alert.subject).toMatch(/^Patchline: CRITICAL GHSA-abcd-efgh-ijkm in apps\/a+\.\.\.$/);
    expect(alert.messageAttributes.image.StringValue.length).toBeLessThanOrEqual(MAX_ATTRIBUTE_LENGTH);
  });

  it('replaces non-ASCII characters in the subject', () => {
    expect(buildAlert(input({ image: 'apps/caf\u00e9' })).subject).toBe('Patchline: CRITICAL CVE-2023-38545 in apps/caf? - rebuild started');
  });

  it('caps the body', () => {
    const packages = Array.from({ length: 20 }, (_, i) => ({ name: `${i}${'n'.repeat(5000)}`, installedVersion: 'v'.repeat(5000) }));
    const alert = buildAlert(input({ packages, action: 'a'.repeat(50_000) }));
    expect(alert.body.length).toBeLessThanOrEqual(MAX_BODY_LENGTH);
  });

  it('drops a digest that is not a digest instead of showing it', () => {
    const alert = buildAlert(input({ digest: 'sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234' }));
    expect(alert.digest).toBeUndefined();
    expect(alert.body).toContain('Image: enterprise/python-311\n');
  });

  it('builds one digest per owner, most severe first', () => {
    const alert = buildAlert({
      kind: AlertKind.DIGEST,
      owner: 'payments-team',
      period: '2025-06-01',
      entries: [
        { image: 'apps/payments-api', vulnerabilityId: 'CVE-2024-0002', severity: 'LOW' },
        { image: 'apps/payments-api', vulnerabilityId: 'CVE-2023-38545', severity: 'CRITICAL', status: 'UPSTREAM_VULNERABLE' },
        { image: 'apps/payments-worker', vulnerabilityId: 'CVE-2024-0001', severity: 'HIGH' },
      ],
    });
    expect(alert).toMatchObject({ kind: 'DIGEST', image: '*', vulnerabilityId: '*', severity: 'CRITICAL' });
    expect(alert.subject).toBe('Patchline: 3 open vulnerabilities in 2 images (2025-06-01), highest CRITICAL');
    expect(alert.body.split('\n').filter((l) => l.startsWith('  - '))).toEqual([
      '  - CRITICAL CVE-2023-38545 in apps/payments-api (UPSTREAM_VULNERABLE)',
      '  - HIGH CVE-2024-0001 in apps/payments-worker',
      '  - LOW CVE-2024-0002 in apps/payments-api',
    ]);
    expect(alert.messageAttributes.image.StringValue).toBe('*');
    expect(JSON.parse(alert.json).total).toBe(3);
  });

  it('lists the owner\'s images behind their bases after its vulnerabilities, most days behind first', () => {
    const alert = buildAlert({
      kind: AlertKind.DIGEST,
      owner: 'payments-team',
      period: '2025-06-01',
      entries: [{ image: 'apps/payments-api', vulnerabilityId: 'CVE-2024-0002', severity: 'LOW' }],
      drifted: [
        { image: 'apps/payments-worker', parents: ['enterprise/python-311'], versionsBehind: 1, daysBehind: 3 },
        { image: 'apps/payments-api', parents: ['enterprise/python-311', 'enterprise/tools'], versionsBehind: 4, daysBehind: 40 },
      ],
    });
    expect(alert.subject).toBe('Patchline: 1 open vulnerability in 1 image, 2 images behind their bases (2025-06-01), highest LOW');
    const lines = alert.body.split('\n');
    expect(lines.filter((l) => l.startsWith('  - '))).toEqual([
      '  - LOW CVE-2024-0002 in apps/payments-api',
      '  - apps/payments-api: 4 versions / 40 days behind enterprise/python-311, enterprise/tools',
      '  - apps/payments-worker: 1 version / 3 days behind enterprise/python-311',
    ]);
    expect(JSON.parse(alert.json)).toMatchObject({ total: 1, totalDrifted: 2, drifted: [{ image: 'apps/payments-api' }, { image: 'apps/payments-worker' }] });
  });

  it('sends a drift-only digest as informational', () => {
    const alert = buildAlert({
      kind: AlertKind.DIGEST,
      owner: 'orders-team',
      entries: [],
      drifted: [{ image: 'apps/orders-api', parents: ['enterprise/java-21'], versionsBehind: 2, daysBehind: 9 }],
    });
    expect(alert.severity).toBe('INFORMATIONAL');
    expect(alert.subject).toBe('Patchline: no open vulnerabilities, 1 image behind its base');
    expect(alert.body).not.toContain('open vulnerabilities in');
  });

  it.each<[string, () => unknown, RegExp]>([
    ['refuses an owner that is not an owner id', () => buildAlert(input({ owner: 'team\nBcc: x' })), /owner "team Bcc: x" is not an owner id/],
    ['refuses an empty owner', () => buildAlert(input({ owner: '' })), /is not an owner id/],
    ['refuses an unknown severity', () => buildAlert(input({ severity: 'SEVERE' as never })), /severity "SEVERE" is not one of/],
    ['refuses an invalid vulnerability id', () => buildAlert(input({ vulnerabilityId: 'CVE-1; DROP TABLE' })), /vulnerability id "CVE-1; DROP TABLE" is not valid/],
    ['refuses an empty image', () => buildAlert(input({ image: '\u0000\n' })), /image is empty/],
    ['refuses an unknown kind', () => buildAlert(input({ kind: 'PANIC' as never })), /kind "PANIC" is not one of/],
    ['refuses an empty digest', () => buildAlert({ kind: AlertKind.DIGEST, owner: 'payments-team', entries: [] }), /at least one entry or one drifted image/],
    [
      'refuses a drift that is not a whole number',
      () => buildAlert({ kind: AlertKind.DIGEST, owner: 'payments-team', entries: [], drifted: [{ image: 'apps/a', parents: ['b'], versionsBehind: -1, daysBehind: 2 }] }),
      /versionsBehind must be a whole number/,
    ],
  ])('%s', (_name, build, message) => {
    expect(build).toThrow(InvalidAlertError);
    expect(build).toThrow(message);
  });
});

describe('Function: sanitizeText', () => {
  it.each([
    ['line\r\nbreak', 'line break'],
    ['tab\there', 'tab here'],
    ['nul\u0000byte', 'nulbyte'],
    ['bidi\u202eoverride\u2066', 'bidioverride'],
    ['zero\u200bwidth\ufeff', 'zerowidth'],
    ['line\u2028separator', 'lineseparator'],
    ['  spaces   collapse  ', 'spaces collapse'],
    ['naïve café ✓', 'naïve café ✓'],
  ])('cleans %j', (input, expected) => {
    expect(sanitizeText(input)).toBe(expected);
  });

  it('caps the length without splitting a surrogate pair', () => {
    expect(sanitizeText('abcdef', 4)).toBe('abc…');
    expect(sanitizeText('ab😀def', 4)).toBe('ab…');
  });
});

describe('Function: alertDedupKey', () => {
  it('combines kind, digest and vulnerability', () => {
    expect(alertDedupKey(DIGEST, 'CVE-2023-38545', AlertKind.UPSTREAM_VULNERABLE)).toBe(`UPSTREAM_VULNERABLE#${DIGEST}#CVE-2023-38545`);
  });

  it('differs per kind, digest and vulnerability', () => {
    const keys = new Set([
      alertDedupKey(DIGEST, 'CVE-2023-38545', AlertKind.UPSTREAM_VULNERABLE),
      alertDedupKey(DIGEST, 'CVE-2023-38545', AlertKind.STILL_VULNERABLE),
      alertDedupKey(`sha256:${'e'.repeat(64)}`, 'CVE-2023-38545', AlertKind.UPSTREAM_VULNERABLE),
      alertDedupKey(DIGEST, 'CVE-2023-38546', AlertKind.UPSTREAM_VULNERABLE),
    ]);
    expect(keys.size).toBe(4);
  });

  it.each<[string, () => string, RegExp]>([
    ['refuses a digest that is not one', () => alertDedupKey('sha256:abc', 'CVE-2023-38545', AlertKind.DIGEST), /is not an image digest/],
    ['refuses a vulnerability id with a separator', () => alertDedupKey(DIGEST, 'CVE-2023-1#x', AlertKind.DIGEST), /is not a vulnerability id/],
    ['refuses an unknown kind', () => alertDedupKey(DIGEST, 'CVE-2023-38545', 'OTHER' as never), /is not an alert kind/],
  ])('%s', (_name, key, message) => {
    expect(key).toThrow(InvalidAlertError);
    expect(key).toThrow(message);
  });
});

describe('Function: shouldAlertAgain', () => {
  it.each([
    [undefined, 'LOW', true],
    [{ severity: 'HIGH' }, 'HIGH', false],
    [{ severity: 'HIGH' }, 'MEDIUM', false],
    [{ severity: 'HIGH' }, 'CRITICAL', true],
    [{ severity: 'UNTRIAGED' }, 'LOW', true],
    [{ severity: 'LOW' }, 'UNTRIAGED', false],
  ] as const)('after %j, a %s finding alerts again: %s', (previous, severity, expected) => {
    expect(shouldAlertAgain(previous, { severity })).toBe(expected);
  });
});
