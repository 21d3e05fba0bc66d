import { classifyRootPush, repinRoot, RootCampaignPointer, RootPushKind, settleDeadline, VerificationVerdict, verifyRebuild } from '../../lambdas/domain/campaign';
import { digestOf } from '../support/template';

// Pure helpers of lambdas/domain/campaign.ts behind the settle window, supersede and scan verification
// (test/domain/campaign.test.ts covers the rest of the module).

const ROOT_URI = '123456789012.dkr.ecr.us-east-2.amazonaws.com/enterprise/os';
const [D1, D2, D3] = [digestOf('os-1'), digestOf('os-2'), digestOf('os-3')];

const pointer = (overrides: Partial<RootCampaignPointer> = {}): RootCampaignPointer => ({
  rootImage: 'enterprise/os',
  campaignId: 'c-0123456789abcdef0123',
  rootDigest: D1,
  pushedAt: '2024-03-01T10:00:00Z',
  ...overrides,
});

describe('Function: classifyRootPush', () => {
  const at = (iso: string): Date => new Date(iso);

  it('opens a new campaign for the first push of a root', () => {
    expect(classifyRootPush(undefined, { digest: D1, pushedAt: '2024-03-01T10:00:00Z' }, at('2024-03-01T10:00:01Z'))).toBe(RootPushKind.NEW);
  });

  it('carries a replay of the pointer\u2019s own digest on in its campaign, however late it arrives', () => {
    const kind = classifyRootPush(pointer({ settlesAt: '2024-03-01T10:05:00Z' }), { digest: D1, pushedAt: '2024-03-01T10:00:00Z' }, at('2024-03-09T00:00:00Z'));
    expect(kind).toBe(RootPushKind.REPLAY);
  });

  it('coalesces a newer digest that arrives while the window is open', () => {
    const p = pointer({ settlesAt: '2024-03-01T10:05:00Z' });
    expect(classifyRootPush(p, { digest: D2, pushedAt: '2024-03-01T10:01:00Z' }, at('2024-03-01T10:04:59Z'))).toBe(RootPushKind.COALESCE);
  });

  it('measures the window by arrival: a digest pushed inside it but arriving after it closed opens a new campaign', () => {
    const p = pointer({ settlesAt: '2024-03-01T10:05:00Z' });
    expect(classifyRootPush(p, { digest: D2, pushedAt: '2024-03-01T10:01:00Z' }, at('2024-03-01T10:05:00Z'))).toBe(RootPushKind.NEW);
  });

  it('opens a new campaign (superseding the pointer\u2019s) without a window', () => {
    expect(classifyRootPush(pointer(), { digest: D2, pushedAt: '2024-03-01T10:01:00Z' }, at('2024-03-01T10:01:01Z'))).toBe(RootPushKind.NEW);
  });

  it('refuses a push older than the pointer\u2019s digest as stale, inside the window or not', () => {
    const late = { digest: D3, pushedAt: '2024-03-01T09:59:59Z' };
    expect(classifyRootPush(pointer(), late, at('2024-03-01T10:01:00Z'))).toBe(RootPushKind.STALE);
    expect(classifyRootPush(pointer({ settlesAt: '2024-03-01T10:05:00Z' }), late, at('2024-03-01T10:01:00Z'))).toBe(RootPushKind.STALE);
  });
});

describe('Function: settleDeadline', () => {
  it('closes the window the given seconds after now', () => {
    const now = new Date('2024-03-01T10:00:00.250Z');
    const deadline = settleDeadline(now, 300);
    expect(Date.parse(deadline!) - now.getTime()).toBe(300 * 1000);
    expect(deadline).toBe(new Date(now.getTime() + 300_000).toISOString());
  });

  it('opens no window for zero seconds (or less): the campaign starts at once', () => {
    expect(settleDeadline(new Date('2024-03-01T10:00:00Z'), 0)).toBeUndefined();
    expect(settleDeadline(new Date('2024-03-01T10:00:00Z'), -5)).toBeUndefined();
  });
});

describe('Function: repinRoot', () => {
  it('re-pins every reference to the root, pinned or not, to the latest digest and keeps the other parents', () => {
    const other = `123456789012.dkr.ecr.us-east-2.amazonaws.com/builders/go@${D3}`;
    expect(repinRoot([`${ROOT_URI}@${D1}`, other, ROOT_URI], ROOT_URI, D2)).toEqual([`${ROOT_URI}@${D2}`, other, `${ROOT_URI}@${D2}`]);
  });

  it('refuses to re-pin a repository that only starts with the root\u2019s name', () => {
    const sibling = `${ROOT_URI}-minimal@${D1}`;
    expect(repinRoot([sibling], ROOT_URI, D2)).toEqual([sibling]);
  });

  it('returns a new list and leaves the input alone', () => {
    const input = [`${ROOT_URI}@${D1}`];
    const output = repinRoot(input, ROOT_URI, D2);
    expect(output).not.toBe(input);
    expect(input).toEqual([`${ROOT_URI}@${D1}`]);
  });
});

describe('Function: verifyRebuild', () => {
  const finding = (vulnerabilityId: string, status: string) => ({ vulnerabilityId, status, digest: D2 });

  it('verifies a rebuild whose rescan no longer has the triggering CVE active', () => {
    const findings = [finding('CVE-2023-38545', 'CLOSED'), finding('CVE-2024-0001', 'ACTIVE')];
    expect(verifyRebuild(['CVE-2023-38545'], findings)).toEqual({ verdict: VerificationVerdict.VERIFIED, remaining: [] });
  });

  it('verifies a campaign started by a push (no triggering CVE) by the scan having completed', () => {
    expect(verifyRebuild([], [finding('CVE-2024-0001', 'ACTIVE')]).verdict).toBe(VerificationVerdict.VERIFIED);
  });

  it('refuses to verify a rebuild that still has a triggering CVE active, returning those findings', () => {
    const active = finding('CVE-2023-38545', 'ACTIVE');
    const result = verifyRebuild(['CVE-2023-38545', 'CVE-2023-38546'], [active, finding('CVE-2023-38546', 'SUPPRESSED'), finding('CVE-2024-0001', 'ACTIVE')]);
    expect(result.verdict).toBe(VerificationVerdict.STILL_VULNERABLE);
    expect(result.remaining).toEqual([active]);
  });
});
