import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseInspectorFindingEvent } from '../../../lambdas/domain/finding';
import { FindingStore } from '../../../lambdas/store/finding-store';
import { PolicyBlockedError, UsageError } from '../../../cli/cli-error';
import { exceptionAddCommand, exceptionListCommand, exceptionRemoveCommand } from '../../../cli/commands/exception';
import { gateCommand } from '../../../cli/commands/gate';
import { openStore } from '../../../cli/store-session';
import { registryHost } from '../../../lambdas/domain/registry-scope';
import { findingEvent, findingEventIn, SEED_CVE } from '../../support/finding-events';
import { REPO_ROOT } from '../../support/template';

const CONFIG = join(REPO_ROOT, 'patchline.config.json');
/** Hub 111111111111/eu-west-1, spokes 222222222222/eu-west-1 and 333333333333/us-east-1. */
const ORGANIZATION_CONFIG = join(REPO_ROOT, 'examples', 'organization.config.json');
const NOW = new Date('2024-03-01T00:00:00Z');
const payments = parseInspectorFindingEvent(findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' }));
const medium = parseInspectorFindingEvent(findingEvent({ repository: 'apps/orders-api', severity: 'MEDIUM', at: '2024-02-01T00:00:00Z' }));
/** The same repository and digest as `payments` in a team account, where the CVE is only MEDIUM. */
const SPOKE = { account: '222222222222', region: 'eu-west-1' };
const SPOKE_PAYMENTS = `${registryHost(SPOKE.account, SPOKE.region)}/apps/payments-api`;
const spokePayments = parseInspectorFindingEvent(findingEventIn(SPOKE, { repository: 'apps/payments-api', digest: payments.digest, severity: 'MEDIUM', at: '2024-02-01T00:00:00Z' }));

describe('Function: gateCommand', () => {
  const cwd = process.cwd();
  let dir: string;
  beforeAll(async () => {
    // The embedded store lives under ./.patchline: each run of this file gets a directory of its own.
    dir = mkdtempSync(join(tmpdir(), 'patchline-gate-'));
    process.chdir(dir);
    const store = await openStore({});
    try {
      const findings = new FindingStore({ client: store.client, tableName: store.tableName });
      await findings.record(payments.repository, payments);
      await findings.record(medium.repository, medium);
      await findings.record(SPOKE_PAYMENTS, spokePayments);
    } finally {
      await store.close();
    }
  });
  afterAll(() => {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to pass a digest with a HIGH finding that has a fix, printing why', async () => {
    const error = await gateCommand(`apps/payments-api@${payments.digest}`, { config: CONFIG, now: NOW }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyBlockedError);
    expect((error as Error).message).toContain(`HIGH ${SEED_CVE}: ${SEED_CVE} is HIGH (threshold HIGH) with a fix on apps/payments-api`);
  });

  it('passes a digest whose findings are below the threshold', async () => {
    expect(await gateCommand('apps/orders-api', { digest: medium.digest, config: CONFIG, now: NOW })).toMatch(/passes \(1 stored finding\(s\) checked, threshold HIGH\)/);
  });

  it('passes once an exception is approved, lists it as waived, and blocks again after removal', async () => {
    await exceptionAddCommand({ image: 'apps/*', vulnerability: SEED_CVE, reason: 'curl unused', approver: 'security-lead', expires: '2030-01-01T00:00:00Z' });
    expect(await exceptionListCommand({ now: NOW })).toContain(`active   ${SEED_CVE}  apps/*  until 2030-01-01T00:00:00Z`);
    expect(await gateCommand(`apps/payments-api@${payments.digest}`, { config: CONFIG, now: NOW })).toContain(`~ HIGH ${SEED_CVE}`);
    await exceptionRemoveCommand({ image: 'apps/*', vulnerability: SEED_CVE });
    await expect(gateCommand(`apps/payments-api@${payments.digest}`, { config: CONFIG, now: NOW })).rejects.toThrow(PolicyBlockedError);
  });

  it('checks a spoke’s ECR URI under its registry-qualified key, not the same-named hub repository’s', async () => {
    const options = { config: ORGANIZATION_CONFIG, now: NOW };
    expect(await gateCommand(`${SPOKE_PAYMENTS}:1.0@${payments.digest}`, options)).toBe(
      `gate: ${SPOKE_PAYMENTS}@${payments.digest} passes (1 stored finding(s) checked, threshold HIGH)`,
    );
    // The hub's own URI is its bare key, with the hub's HIGH finding.
    await expect(gateCommand(`${registryHost('111111111111', 'eu-west-1')}/apps/payments-api@${payments.digest}`, options)).rejects.toThrow(
      `gate: apps/payments-api@${payments.digest} is blocked by 1 finding(s)`,
    );
  });

  it('refuses an ECR URI of an account that is neither the hub nor a spoke', async () => {
    const image = `${registryHost('444444444444', 'eu-west-1')}/apps/payments-api@${payments.digest}`;
    await expect(gateCommand(image, { config: ORGANIZATION_CONFIG, now: NOW })).rejects.toThrow(UsageError);
    await expect(gateCommand(image, { config: ORGANIZATION_CONFIG, now: NOW })).rejects.toThrow(/444444444444 in eu-west-1 is neither the hub nor a configured spoke/);
  });

  it('checks an ECR URI under its repository without an organization', async () => {
    await expect(gateCommand(`${registryHost(SPOKE.account, SPOKE.region)}/apps/payments-api@${payments.digest}`, { config: CONFIG, now: NOW })).rejects.toThrow(
      `gate: apps/payments-api@${payments.digest} is blocked`,
    );
  });

  it('applies a policy file instead of the config', async () => {
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ severityThreshold: 'CRITICAL' }));
    expect(await gateCommand(`apps/payments-api@${payments.digest}`, { config: CONFIG, policy, now: NOW })).toContain('passes');
  });

  it.each([
    ['refuses an image without a digest and no recorded version', 'apps/unknown', {}, /no digest/],
    ['refuses a digest that is not one', 'apps/payments-api', { digest: 'latest' }, /not an image digest/],
  ])('%s', async (_name, image, extra, message) => {
    await expect(gateCommand(image, { config: CONFIG, ...extra })).rejects.toThrow(message);
    await expect(gateCommand(image, { config: CONFIG, ...extra })).rejects.toThrow(UsageError);
  });

  it('refuses an invalid exception and an unknown removal as usage errors', async () => {
    await expect(exceptionAddCommand({ image: 'apps/*', vulnerability: SEED_CVE, reason: 'x', approver: 'y', expires: 'never' })).rejects.toThrow(UsageError);
    await expect(exceptionRemoveCommand({ image: 'apps/none', vulnerability: SEED_CVE })).rejects.toThrow(/no exception/);
  });
});
