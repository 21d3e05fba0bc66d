import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { parseInspectorFindingEvent } from '../../../lambdas/domain/finding';
import { FindingStore } from '../../../lambdas/store/finding-store';
import { PolicyBlockedError, UsageError } from '../../../cli/cli-error';
import { exceptionAddCommand, exceptionListCommand, exceptionRemoveCommand } from '../../../cli/commands/exception';
import { gateCommand } from '../../../cli/commands/gate';
import { openStore } from '../../../cli/store-session';
import { findingEvent, SEED_CVE } from '../../support/finding-events';
import { REPO_ROOT } from '../../support/template';

const CONFIG = join(REPO_ROOT, 'patchline.config.json');
const NOW = new Date('2024-03-01T00:00:00Z');
const payments = parseInspectorFindingEvent(findingEvent({ repository: 'apps/payments-api', at: '2024-02-01T00:00:00Z' }));
const medium = parseInspectorFindingEvent(findingEvent({ repository: 'apps/orders-api', severity: 'MEDIUM', at: '2024-02-01T00:00:00Z' }));

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
      await findings.record(payments);
      await findings.record(medium);
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
