import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { checkOwnersKnown, InvalidConfigError, isScheduleExpression, parseConfig } from '../../lambdas/domain/config';
import { parseLineageFile } from '../../lambdas/domain/lineage-file';
import { policyFromConfig } from '../../lambdas/handlers/finding-received';
import { ConfigFileError, readConfigFile } from '../../lib/patchline-app';

const CONFIG_FILE = join(__dirname, '../../patchline.config.json');
const LINEAGE_FILE = join(__dirname, '../../examples/lineage.yaml');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawConfig = Record<string, any>;
const sample = (): RawConfig => structuredClone(JSON.parse(readFileSync(CONFIG_FILE, 'utf8'))) as RawConfig;

/** The problems parseConfig reports for a config, or [] when it parses. */
function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw, 'test.config.json');
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigError);
    return (error as InvalidConfigError).problems;
  }
}

describe('Function: parseConfig', () => {
  it('parses the repository\u2019s patchline.config.json', () => {
    const config = parseConfig(sample());
    expect(config.rebuild.concurrency).toBe(10);
    expect(config.ops).toBeUndefined();
  });

  it('accepts an optional ops email', () => {
    const raw = sample();
    raw.ops = { email: 'oncall@example.com' };
    expect(parseConfig(raw).ops).toEqual({ email: 'oncall@example.com' });
  });

  it('refuses an ops email that is not an address, naming the field and the value', () => {
    const raw = sample();
    raw.ops = { email: 'oncall' };
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^ops\.email: .* \(received "oncall"\)$/)]);
  });

  it('refuses an unknown field of ops', () => {
    const raw = sample();
    raw.ops = { pager: 'x' };
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^ops: .*pager/)]);
  });

  it('refuses a severity that is not one of Inspector\u2019s, listing the allowed ones', () => {
    const raw = sample();
    raw.severityThreshold = 'SEVERE';
    const [problem] = problemsOf(raw);
    expect(problem).toMatch(/^severityThreshold: /);
    for (const allowed of ['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL']) expect(problem).toContain(allowed);
    expect(problem).toContain('(received "SEVERE")');
  });

  it.each([0, -3])('refuses a rebuild concurrency cap of %d', (cap) => {
    const raw = sample();
    raw.rebuild.concurrency = cap;
    expect(problemsOf(raw)).toEqual([`rebuild.concurrency: rebuild.concurrency must be at least 1 (received ${cap})`]);
  });

  it('refuses a fractional concurrency cap', () => {
    const raw = sample();
    raw.rebuild.concurrency = 2.5;
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^rebuild\.concurrency: .*expected int.*\(received 2\.5\)$/)]);
  });

  it.each([
    ['a five-field (Unix) cron', 'cron(0 6 * * *)'],
    ['a cron with both day fields set', 'cron(0 6 * * MON *)'],
    ['a cron with a shell command', 'cron(0 6 * * ? *); rm -rf /'],
    ['a rate of zero', 'rate(0 days)'],
    ['a rate with the wrong plural', 'rate(2 day)'],
  ])('refuses %s as the rescan schedule', (_what, schedule) => {
    const raw = sample();
    raw.rescan.schedule = schedule;
    const problems = problemsOf(raw);
    expect(problems).toHaveLength(1);
    expect(problems[0].startsWith('rescan.schedule: rescan.schedule must be rate(N unit) or cron(')).toBe(true);
    expect(problems[0].endsWith(`(received ${JSON.stringify(schedule)})`)).toBe(true);
  });

  it('refuses a repository pattern that is not an ECR name or prefix', () => {
    const raw = sample();
    raw.repositories = ['Enterprise/*'];
    expect(problemsOf(raw)).toEqual(['repositories.0: not an ECR repository name or prefix* (received "Enterprise/*")']);
  });

  it('reports every problem at once, each with its path', () => {
    const raw = sample();
    raw.severityThreshold = 'SEVERE';
    raw.rebuild.concurrency = 0;
    raw.rescan.schedule = 'cron(0 6 * * *)';
    expect(problemsOf(raw).map((p) => p.split(':')[0]).sort()).toEqual(['rebuild.concurrency', 'rescan.schedule', 'severityThreshold']);
  });

  it('says in its message which file is invalid', () => {
    const raw = sample();
    raw.rebuild.concurrency = 0;
    expect(() => parseConfig(raw, 'prod.config.json')).toThrow(/^prod\.config\.json is invalid:\n {2}- rebuild\.concurrency: /);
  });
});

describe('Function: isScheduleExpression', () => {
  it('accepts the schedules EventBridge Scheduler accepts', () => {
    expect(['rate(1 day)', 'rate(6 hours)', 'cron(0 6 * * ? *)', 'cron(15 2 ? * MON-FRI *)'].filter((s) => !isScheduleExpression(s))).toEqual([]);
  });
});

describe('Function: checkOwnersKnown', () => {
  const lineage = parseLineageFile(LINEAGE_FILE, readFileSync(LINEAGE_FILE, 'utf8'));

  it('accepts the example lineage against the repository config', () => {
    expect(() => checkOwnersKnown(parseConfig(sample()), lineage, 'examples/lineage.yaml')).not.toThrow();
  });

  it('refuses a lineage whose owner the config does not list, naming the image, the owner and the known ones', () => {
    const raw = sample();
    delete raw.owners['payments-team'];
    expect(() => checkOwnersKnown(parseConfig(raw), lineage, 'examples/lineage.yaml')).toThrow(
      /image apps\/payments-api: owner "payments-team" is not in owners \(known: platform-team, orders-team, build-tools, observability-vendor\)/,
    );
  });
});

describe('Function: readConfigFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'patchline-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('reads the repository config (what `cdk synth` does by default)', () => {
    expect(readConfigFile(CONFIG_FILE).repositories).toContain('enterprise/*');
  });

  it('fails on a missing file with ConfigFileError naming it', () => {
    const file = join(dir, 'absent.json');
    expect(() => readConfigFile(file)).toThrow(ConfigFileError);
    expect(() => readConfigFile(file)).toThrow(`cannot read ${file}: ENOENT`);
  });

  it('fails on a file that is not JSON', () => {
    const file = write('broken.json', '{ "owners": ');
    expect(() => readConfigFile(file)).toThrow(new RegExp(`^cannot read ${file}: not JSON`));
  });

  it('fails on an invalid field with InvalidConfigError naming the file and the field (`cdk synth -c config=bad.json`)', () => {
    const raw = sample();
    raw.rebuild.concurrency = 0;
    const file = write('bad.json', JSON.stringify(raw));
    let error: unknown;
    try {
      readConfigFile(file);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toBe(`${file} is invalid:\n  - rebuild.concurrency: rebuild.concurrency must be at least 1 (received 0)`);
  });
});

describe('Function: parseConfig (discovery, rescan age, policy exceptions and trusted bases)', () => {
  const exception = { image: 'apps/payments-api', vulnerabilityId: 'CVE-2023-38545', reason: 'not reachable', approver: 'security@example.com', expiresAt: '2030-01-01T00:00:00Z' };

  it('leaves them out of the repository\u2019s config: no discovery override, the workflow\u2019s scan age, an empty policy', () => {
    const config = parseConfig(sample());
    expect(config.discovery).toBeUndefined();
    expect(config.rescan.maxScanAgeDays).toBeUndefined();
    expect(config.exceptions).toEqual([]);
    expect(config.trustedBases).toEqual([]);
  });

  it('accepts ECR tag keys for discovery, a scan age and policy entries', () => {
    const raw = sample();
    raw.discovery = { ownerTagKey: 'team:owner', buildProjectTagKey: 'ci/project' };
    raw.rescan = { ...raw.rescan, maxScanAgeDays: 14 };
    raw.exceptions = [exception];
    raw.trustedBases = ['registry.access.redhat.com/**'];
    const config = parseConfig(raw);
    expect(config.discovery).toEqual(raw.discovery);
    expect(config.rescan).toEqual({ schedule: raw.rescan.schedule, maxScanAgeDays: 14 });
    expect(config.exceptions).toEqual([exception]);
    expect(config.trustedBases).toEqual(['registry.access.redhat.com/**']);
  });

  it('refuses a discovery tag key that ECR would not take, and an unknown discovery field', () => {
    const raw = sample();
    raw.discovery = { ownerTagKey: 'owner\u0000' };
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^discovery\.ownerTagKey: an ECR tag key/)]);
    raw.discovery = { ownerTag: 'owner' };
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^discovery: .*ownerTag/)]);
  });

  it.each([0, 366, 1.5])('refuses a rescan.maxScanAgeDays of %d', (days) => {
    const raw = sample();
    raw.rescan = { ...raw.rescan, maxScanAgeDays: days };
    expect(problemsOf(raw)).toEqual([expect.stringMatching(/^rescan\.maxScanAgeDays: /)]);
  });

  it('refuses an exception without an expiry, and a trusted base that is not an image pattern (the policy\u2019s own rules)', () => {
    const raw = sample();
    const { expiresAt: _expiresAt, ...open } = exception;
    raw.exceptions = [open];
    raw.trustedBases = ['not an image'];
    const problems = problemsOf(raw);
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^exceptions\.0\.expiresAt: /), expect.stringMatching(/^trustedBases\.0: an image key or pattern/)]));
  });
});

describe('Function: policyFromConfig', () => {
  it('carries the threshold, fix requirement, exceptions and trusted bases of the config into the policy', () => {
    const raw = sample();
    raw.exceptions = [{ image: 'apps/*', vulnerabilityId: 'CVE-2023-38545', reason: 'waived', approver: 'ciso', expiresAt: '2030-01-01T00:00:00Z' }];
    raw.trustedBases = ['vendor/**'];
    const config = parseConfig(raw);
    expect(policyFromConfig(config)).toEqual({
      severityThreshold: config.severityThreshold,
      requireFixAvailable: config.requireFixAvailable,
      exceptions: raw.exceptions,
      trustedBases: ['vendor/**'],
    });
  });
});
