import { join } from 'path';
import { loadLineage } from '../../cli/input-files';
import { LocalRuntime } from '../../cli/local/local-runtime';
import { findingEvent, SCAN_SAMPLE_DOCS, SCAN_SAMPLE_LAMBDA_GO, SEED_CVE, UBI_MIRROR } from '../support/finding-events';
import { projectConfig, projectTemplate, REPO_ROOT, sampleEvent } from '../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const UBI = `${UBI_MIRROR}:1-34`;

async function start(): Promise<LocalRuntime> {
  return LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
}

async function run(runtime: LocalRuntime, events: unknown[]): Promise<void> {
  for (const event of events) runtime.send(event);
  await runtime.runUntilQuiet();
}

type Hostile = [name: string, event: unknown];

/** Malformed and hostile variants of a valid finding (derived from the real sample) and of the real scan samples. */
function hostileEvents(): Hostile[] {
  const valid = (): Record<string, any> => findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' });
  const mutate = (name: string, change: (e: Record<string, any>) => void): Hostile => {
    const event = valid();
    change(event);
    return [name, event];
  };
  const ecr = (e: Record<string, any>) => e.detail.resources[0].details.awsEcrContainerImage;
  const pkg = (e: Record<string, any>) => e.detail.packageVulnerabilityDetails.vulnerablePackages[0];
  const scan = (change: (e: Record<string, any>) => void): Record<string, any> => {
    const event = structuredClone(sampleEvent(SCAN_SAMPLE_LAMBDA_GO)) as Record<string, any>;
    change(event);
    return event;
  };
  let nested: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < 20; i++) nested = { nested };
  return [
    mutate('missing id', (e) => delete e.id),
    mutate('numeric id', (e) => (e.id = 42)),
    mutate('account with letters', (e) => (e.account = '12345678901a')),
    mutate('bad region', (e) => (e.region = 'mars-north-9')),
    mutate('unparseable time', (e) => (e.time = 'yesterday')),
    mutate('missing finding ARN', (e) => delete e.detail.findingArn),
    mutate('finding ARN of another service', (e) => (e.detail.findingArn = 'arn:aws:s3:::bucket/finding')),
    mutate('unknown severity', (e) => (e.detail.severity = 'EXTREME')),
    mutate('lowercase severity', (e) => (e.detail.severity = 'high')),
    mutate('severity as a number', (e) => (e.detail.severity = 9)),
    mutate('no package details', (e) => delete e.detail.packageVulnerabilityDetails),
    mutate('no vulnerability id', (e) => delete e.detail.packageVulnerabilityDetails.vulnerabilityId),
    mutate('SQL in the vulnerability id', (e) => (e.detail.packageVulnerabilityDetails.vulnerabilityId = "CVE-2023-1'; DROP TABLE findings;--")),
    mutate('newline in the vulnerability id', (e) => (e.detail.packageVulnerabilityDetails.vulnerabilityId = 'CVE-2023-38545\nSubject: phish')),
    mutate('101 vulnerable packages', (e) => (e.detail.packageVulnerabilityDetails.vulnerablePackages = Array.from({ length: 101 }, () => structuredClone(pkg(e))))),
    mutate('vulnerable packages as an object', (e) => (e.detail.packageVulnerabilityDetails.vulnerablePackages = { curl: true })),
    mutate('control characters in a package name', (e) => (pkg(e).name = 'curl\u0000\u0007')),
    mutate('10,000-character package version', (e) => (pkg(e).version = '1'.repeat(10_000))),
    mutate('shell in the package manager', (e) => (pkg(e).packageManager = 'npm; ls')),
    mutate('no resources', (e) => (e.detail.resources = [])),
    mutate('11 resources', (e) => (e.detail.resources = Array.from({ length: 11 }, () => structuredClone(e.detail.resources[0])))),
    mutate('command substitution in the repository', (e) => (ecr(e).repositoryName = 'apps/payments-api$(reboot)')),
    mutate('path traversal in the repository', (e) => (ecr(e).repositoryName = '../../etc/passwd')),
    mutate('uppercase repository', (e) => (ecr(e).repositoryName = 'Apps/Payments-API')),
    mutate('bidi override in the repository', (e) => (ecr(e).repositoryName = 'apps/payments\u202e-api')),
    mutate('300-character repository', (e) => (ecr(e).repositoryName = `apps/${'a'.repeat(300)}`)),
    mutate('repository as an array', (e) => (ecr(e).repositoryName = ['apps/payments-api'])),
    mutate('digest that is not a digest', (e) => (ecr(e).imageHash = 'latest')),
    mutate('placeholder digest of the sample', (e) => (ecr(e).imageHash = 'sha256:36c7b282abd0186e01419f2e58743e1bf635808231049bbc9d77e5EXAMPLE')),
    mutate('sha512 digest', (e) => (ecr(e).imageHash = `sha512:${'a'.repeat(128)}`)),
    mutate('shell in a tag', (e) => (ecr(e).imageTags = ['latest;rm -rf /'])),
    mutate('101 tags', (e) => (ecr(e).imageTags = Array.from({ length: 101 }, (_, i) => `t${i}`))),
    mutate('numeric tag', (e) => (ecr(e).imageTags = [1])),
    mutate('ANSI escape in a tag', (e) => (ecr(e).imageTags = ['\u001b[31mred'])),
    mutate('resource ARN naming another digest', (e) => (e.detail.resources[0].id = e.detail.resources[0].id.replace(/[0-9a-f]{64}$/, 'f'.repeat(64)))),
    mutate('resource id that is not an ARN', (e) => (e.detail.resources[0].id = 'payments')),
    mutate('resource without details', (e) => (e.detail.resources[0].details = {})),
    mutate('detail objects that disagree', (e) => (e.detail.resources[0].details.image = { ...ecr(e), imageDigest: `sha256:${'e'.repeat(64)}`, imageHash: undefined })),
    mutate('registry that is not an account', (e) => (ecr(e).registry = 'docker.io')),
    mutate('account id of 13 digits', (e) => (e.detail.awsAccountId = '1234567890123')),
    mutate('February 30th', (e) => (e.detail.firstObservedAt = 'Feb 30, 2024, 1:00:00 PM')),
    mutate('timestamp as a number', (e) => (e.detail.lastObservedAt = 1700000000)),
    mutate('Inspector score of 11', (e) => (e.detail.inspectorScore = 11)),
    mutate('negative CVSS', (e) => (e.detail.packageVulnerabilityDetails.cvss[0].baseScore = -1)),
    mutate('unknown fixAvailable', (e) => (e.detail.fixAvailable = 'MAYBE')),
    mutate('prototype pollution key', (e) => (e.detail = JSON.parse(JSON.stringify(e.detail).replace('{', '{"__proto__":{"polluted":true},')))),
    mutate('nested 20 levels deep', (e) => (e.detail.extra = nested)),
    mutate('event larger than 256 KB', (e) => (e.detail.description = 'x'.repeat(300_000))),
    mutate('ANSI escapes in the title', (e) => (e.detail.title = '\u001b]0;owned\u0007CVE')),
    mutate('detail as an array', (e) => (e.detail = [e.detail])),
    mutate('finding on a Lambda function', (e) => (e.detail.resources[0].type = 'AWS_LAMBDA_FUNCTION')),
    mutate('code-scanning finding', (e) => (e.detail.type = 'CODE_VULNERABILITY')),
    mutate('unknown status', (e) => (e.detail.status = 'OPEN')),
    mutate('missing detail', (e) => delete e.detail),
    ['the real basic-scan sample (its digest is a placeholder)', structuredClone(sampleEvent(SCAN_SAMPLE_DOCS))],
    ['scan with a negative count', scan((e) => (e.detail['finding-severity-counts'].HIGH = -1))],
    ['scan with an injected repository', scan((e) => (e.detail['repository-name'] = 'tribble`id`'))],
    ['scan with a fractional count', scan((e) => (e.detail['finding-severity-counts'].LOW = 1.5))],
    ['an array instead of an event', [valid()]],
    ['null', null],
  ];
}

describe('Class: LocalRuntime (findings)', () => {
  let runtime: LocalRuntime | undefined;
  afterEach(async () => {
    await runtime?.stop();
    runtime = undefined;
  });

  it('runs the seed scenario: origin at the external base, one alert to platform-team, one rebuild campaign from enterprise/python-311, the vendor told apart', async () => {
    runtime = await start();
    await run(runtime, [
      findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' }),
      findingEvent({ repository: 'enterprise/python-311', at: '2024-02-01T00:00:00Z' }),
      findingEvent({ repository: UBI_MIRROR, tag: '1-34', at: '2024-02-01T00:00:00Z' }),
    ]);
    let result = runtime.result();
    expect(result.deadLetters).toEqual([]);
    expect(result.alerts).toEqual([{ owner: 'platform-team', kind: 'UPSTREAM_VULNERABLE', image: 'enterprise/python-311', vulnerability: SEED_CVE }]);
    const [first, ...children] = result.builds;
    expect(first).toMatchObject({ image: 'enterprise/python-311', baseImage: UBI, project: 'enterprise-python-311', status: 'SUCCEEDED' });
    expect(children.map((b) => b.image).sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
    expect(new Set(result.builds.map((b) => b.campaign))).toEqual(new Set([first.campaign]));
    const campaign = await runtime.deps.campaigns.get(first.campaign);
    expect(campaign).toMatchObject({ rootImage: 'enterprise/python-311', trigger: 'finding' });
    const message = runtime.sns.published[0];
    expect(message.subject).toContain(SEED_CVE);
    expect(message.message).toContain(`Origin: ${UBI} (external, observed)`);
    expect(message.attributes).toMatchObject({ owner: 'platform-team', severity: 'HIGH' });

    // Inspector re-sends the finding with new timestamps: no second alert, no second campaign.
    await run(runtime, [findingEvent({ repository: 'apps/payments-api', at: '2024-02-02T00:00:00Z' })]);
    result = runtime.result();
    expect(result.alerts).toHaveLength(1);
    expect(result.builds).toHaveLength(4);

    // The vendor rescored it: an escalation alerts again.
    await run(runtime, [findingEvent({ repository: 'apps/payments-api', at: '2024-02-03T00:00:00Z', severity: 'CRITICAL' })]);
    result = runtime.result();
    expect(result.alerts).toHaveLength(2);
    expect(runtime.sns.published[1].attributes).toMatchObject({ owner: 'platform-team', severity: 'CRITICAL', kind: 'UPSTREAM_VULNERABLE' });

    // The same CVE on the COTS image: its vendor contact only, never a build.
    await run(runtime, [findingEvent({ repository: 'vendor/observability-agent', tag: '2.1', at: '2024-02-03T00:00:00Z' })]);
    result = runtime.result();
    expect(result.alerts.slice(2)).toEqual([{ owner: 'observability-vendor', kind: 'VENDOR_VULNERABLE', image: 'vendor/observability-agent', vulnerability: SEED_CVE }]);
    expect(result.builds).toHaveLength(4);
    expect(result.builds.some((b) => b.image.startsWith('vendor/'))).toBe(false);
    expect(result.deadLetters).toEqual([]);
  });

  it('starts no rebuild when the policy says not to (below the threshold) and alerts nobody', async () => {
    runtime = await start();
    await run(runtime, [findingEvent({ repository: 'apps/payments-api', severity: 'MEDIUM' }), findingEvent({ repository: 'enterprise/python-311', severity: 'MEDIUM' })]);
    const result = runtime.result();
    expect(result).toMatchObject({ alerts: [], builds: [], deadLetters: [] });
    expect(result.executions.filter((e) => e.status !== 'SUCCEEDED')).toEqual([]);
  });

  it('dead-letters each of 50+ malformed or hostile events whole, with a reason, and applies none of them', async () => {
    const hostile = hostileEvents();
    expect(hostile.length).toBeGreaterThanOrEqual(50);
    runtime = await start();
    await run(runtime, hostile.map(([, event]) => event));
    const letters = runtime.result().deadLetters;
    expect(letters).toHaveLength(hostile.length);
    for (const [name, event] of hostile) {
      const letter = letters.find((l) => JSON.stringify(l.event) === JSON.stringify(event));
      expect({ name, found: letter !== undefined }).toEqual({ name, found: true });
      // Refused by finding-received's parser, or matched by no rule at all (EventBridge would not deliver it).
      expect({ name, reason: letter!.reason }).toEqual({ name, reason: expect.stringMatching(/^invalid (Inspector2 Finding|ECR Image Scan) event at \$|^matched no Patchline rule/) });
    }
    const byWorkflow = letters.filter((l) => l.reason.startsWith('invalid '));
    expect(byWorkflow.length).toBeGreaterThanOrEqual(45);
    // Nothing half-applied: no finding, scan summary, alert, campaign or build.
    expect(await runtime.deps.findings!.listOpen()).toEqual([]);
    expect(await runtime.deps.findings!.forImage('apps/payments-api')).toEqual([]);
    expect(await runtime.deps.findings!.getScan('tribble-image-scan-test', (sampleEvent(SCAN_SAMPLE_LAMBDA_GO).detail as Record<string, string>)['image-digest'])).toBeUndefined();
    expect(await runtime.deps.campaigns.list()).toEqual([]);
    expect(runtime.result()).toMatchObject({ alerts: [], builds: [] });
  });
});
