import { campaignId, decideRebuilds, MemberState, rebuildExecutionName } from '../../lambdas/domain/campaign';

describe('Function: rebuildExecutionName', () => {
  it('is deterministic, unique per (campaign, image) and a valid execution name', () => {
    const a = rebuildExecutionName('c-1', 'apps/payments-api');
    expect(a).toBe(rebuildExecutionName('c-1', 'apps/payments-api'));
    expect(a).not.toBe(rebuildExecutionName('c-2', 'apps/payments-api'));
    expect(a).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
    expect(rebuildExecutionName('c-1', 'x'.repeat(500))).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });
});

describe('Function: campaignId', () => {
  it('is the same for a replayed push and differs for a new digest', () => {
    expect(campaignId('enterprise/python-311', 'sha256:a')).toBe(campaignId('enterprise/python-311', 'sha256:a'));
    expect(campaignId('enterprise/python-311', 'sha256:a')).not.toBe(campaignId('enterprise/python-311', 'sha256:b'));
  });
});

describe('Function: decideRebuilds', () => {
  const base = {
    campaignId: 'c-x',
    pushedImage: 'left',
    pushedDigest: 'sha256:1',
    parentDigest: () => 'sha256:2',
    imageUri: (i: string, d: string | undefined) => `${i}@${d}`,
    priority: () => 1,
  };
  const child = (image: string, parents: string[], extra = {}) => ({
    image,
    tier: 'application' as const,
    parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
    build: { project: 'p' },
    ...extra,
  });

  it('waits for the last parent still building in the campaign', () => {
    const states: Record<string, MemberState> = { app: 'pending', right: 'building' };
    const d = decideRebuilds({ ...base, children: [child('app', ['left', 'right'])], memberState: (i) => states[i] });
    expect(d).toEqual({ start: [], wait: [{ image: 'app', waitingFor: ['right'] }], skip: [] });
  });

  it('starts once every parent is built, pinning each parent', () => {
    const states: Record<string, MemberState> = { app: 'pending', right: 'built' };
    const d = decideRebuilds({ ...base, children: [child('app', ['left', 'right'])], memberState: (i) => states[i] });
    expect(d.start).toEqual([expect.objectContaining({ image: 'app', baseImage: 'left@sha256:1', parentImages: ['left@sha256:1', 'right@sha256:2'] })]);
  });

  it('skips vendor images, images without a build and children of a failed parent', () => {
    const states: Record<string, MemberState> = { broken: 'failed' };
    const d = decideRebuilds({
      ...base,
      children: [child('vendor', ['left'], { tier: 'cots' }), child('nobuild', ['left'], { build: undefined }), child('app', ['left', 'broken'])],
      memberState: (i) => states[i],
    });
    expect(d.skip.map((s) => s.image)).toEqual(['vendor', 'nobuild', 'app']);
    expect(d.start).toEqual([]);
  });

  it('does not start a child that is already building or built', () => {
    const d = decideRebuilds({ ...base, children: [child('app', ['left'])], memberState: () => 'building' });
    expect(d.start).toEqual([]);
  });
});
