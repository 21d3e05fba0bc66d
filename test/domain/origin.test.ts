import { NormalizedFinding } from '../../lambdas/domain/finding';
import { ImageNode, ImageNotFoundError, LineageGraph } from '../../lambdas/domain/lineage';
import { attributeOrigin, Evidence, FindingsLookup, OriginAction } from '../../lambdas/domain/origin';

const UBI = 'registry.access.redhat.com/ubi9/python-311:1-34';
const UBI_MINIMAL = 'registry.access.redhat.com/ubi9/ubi-minimal:9.4';
const ENTERPRISE = 'enterprise/python-311';
const PAYMENTS = 'apps/payments-api';
const COTS = 'vendor/observability-agent';
const CVE = 'CVE-2023-38545';
const CURL = { name: 'curl', installedVersion: '7.76.1-26.el9' };

/** The seed lineage (as in examples/lineage.yaml). */
function seedImages(): ImageNode[] {
  return [
    { image: ENTERPRISE, tier: 'enterprise', owner: 'platform-team', parents: [{ image: UBI, role: 'runtime' }], build: { project: 'enterprise-python-311' } },
    { image: PAYMENTS, tier: 'application', owner: 'payments-team', parents: [{ image: ENTERPRISE, role: 'runtime' }], build: { project: 'apps-payments-api' } },
    { image: 'apps/orders-api', tier: 'application', owner: 'orders-team', parents: [{ image: ENTERPRISE, role: 'runtime' }], build: { project: 'apps-orders-api' } },
    { image: 'builders/python-ci', tier: 'builder', owner: 'build-tools', parents: [{ image: ENTERPRISE, role: 'runtime' }], build: { project: 'builders-python-ci' } },
    { image: COTS, tier: 'cots', owner: 'observability-vendor', parents: [{ image: UBI_MINIMAL, role: 'runtime' }] },
  ];
}

function curlFinding(repository: string, change: Partial<NormalizedFinding> = {}): NormalizedFinding {
  return {
    vulnerabilityId: CVE,
    severity: 'HIGH',
    cvss: 7.5,
    packages: [{ ...CURL, fixedVersion: '7.76.1-26.el9_3.2', packageManager: 'OS' }],
    fixAvailable: 'YES',
    repository: repository.includes(':') ? 'mirror' : repository,
    digest: `sha256:${'c'.repeat(64)}`,
    tags: ['latest'],
    account: '123456789012',
    region: 'eu-west-1',
    firstObservedAt: '2024-01-01T00:00:00.000Z',
    lastObservedAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    status: 'ACTIVE',
    findingArn: 'arn:aws:inspector2:eu-west-1:123456789012:finding/0123abcd',
    title: `${CVE} - curl`,
    ...change,
  };
}

/** Images with a findings record; every other image has none (undefined). */
function lookup(records: Record<string, NormalizedFinding[]>): FindingsLookup {
  return (image) => records[image];
}

const vulnerability = { vulnerabilityId: CVE, packages: [CURL] };

describe('Function: attributeOrigin', () => {
  const seed = LineageGraph.fromImages(seedImages());

  it('attributes the seed CVE to the external UBI base and lands the fix in enterprise/python-311', () => {
    const findings = lookup({ [PAYMENTS]: [curlFinding(PAYMENTS)], [ENTERPRISE]: [curlFinding(ENTERPRISE)], [UBI]: [curlFinding(UBI)] });
    const result = attributeOrigin(seed, PAYMENTS, vulnerability, findings);
    expect(result).toMatchObject({
      image: PAYMENTS,
      vulnerabilityId: CVE,
      origin: UBI,
      originTier: 'external',
      originInternal: false,
      evidence: Evidence.OBSERVED,
      actionImage: ENTERPRISE,
      action: OriginAction.ALERT_OWNER_UPSTREAM,
      otherOrigins: [],
    });
    expect(result.path).toEqual([
      { image: UBI, tier: 'external', internal: false, evidence: 'observed' },
      { image: ENTERPRISE, tier: 'enterprise', internal: true, evidence: 'observed' },
      { image: PAYMENTS, tier: 'application', internal: true, evidence: 'reported' },
    ]);
    expect(result.reason).toContain(`alert the owner of ${ENTERPRISE} and watch ${UBI} for an update`);
  });

  it('infers the external base when it has no findings record (it cannot be scanned), and says so', () => {
    const findings = lookup({ [PAYMENTS]: [curlFinding(PAYMENTS)], [ENTERPRISE]: [curlFinding(ENTERPRISE)] });
    const result = attributeOrigin(seed, PAYMENTS, vulnerability, findings);
    expect(result).toMatchObject({ origin: UBI, evidence: Evidence.INFERRED, actionImage: ENTERPRISE, action: OriginAction.ALERT_OWNER_UPSTREAM });
    expect(result.path[0].evidence).toBe(Evidence.INFERRED);
    expect(result.reason).toContain('inferred');
  });

  it('rebuilds at the enterprise image when the external base was scanned and does not carry it', () => {
    const findings = lookup({ [ENTERPRISE]: [curlFinding(ENTERPRISE)], [UBI]: [] });
    const result = attributeOrigin(seed, PAYMENTS, vulnerability, findings);
    expect(result).toMatchObject({ origin: ENTERPRISE, originTier: 'enterprise', originInternal: true, actionImage: ENTERPRISE, action: OriginAction.REBUILD, evidence: 'observed' });
    expect(result.path.map((s) => s.image)).toEqual([ENTERPRISE, PAYMENTS]);
  });

  it('keeps the origin at the reported image when its parent was scanned clean', () => {
    const result = attributeOrigin(seed, PAYMENTS, vulnerability, lookup({ [ENTERPRISE]: [] }));
    expect(result).toMatchObject({ origin: PAYMENTS, actionImage: PAYMENTS, action: OriginAction.REBUILD, evidence: 'observed' });
    expect(result.path).toEqual([{ image: PAYMENTS, tier: 'application', internal: true, evidence: 'reported' }]);
  });

  it('stops at a parent that carries another version of the package (the image installed its own)', () => {
    const other = curlFinding(ENTERPRISE, { packages: [{ name: 'curl', installedVersion: '7.76.1-19.el9' }] });
    const result = attributeOrigin(seed, PAYMENTS, vulnerability, lookup({ [ENTERPRISE]: [other] }));
    expect(result.origin).toBe(PAYMENTS);
  });

  it('does not count a CLOSED finding on a parent as carrying it', () => {
    const closed = curlFinding(ENTERPRISE, { status: 'CLOSED' });
    expect(attributeOrigin(seed, PAYMENTS, vulnerability, lookup({ [ENTERPRISE]: [closed] })).origin).toBe(PAYMENTS);
    const suppressed = curlFinding(ENTERPRISE, { status: 'SUPPRESSED' });
    expect(attributeOrigin(seed, PAYMENTS, vulnerability, lookup({ [ENTERPRISE]: [suppressed], [UBI]: [] })).origin).toBe(ENTERPRISE);
  });

  it('matches on the vulnerability id alone when no package is given', () => {
    const result = attributeOrigin(seed, PAYMENTS, { vulnerabilityId: CVE, packages: [] }, lookup({ [ENTERPRISE]: [curlFinding(ENTERPRISE)], [UBI]: [] }));
    expect(result.origin).toBe(ENTERPRISE);
  });

  it('alerts the owner instead of rebuilding an internal origin without a build project', () => {
    const images = seedImages().map((n) => (n.image === ENTERPRISE ? { ...n, build: undefined } : n));
    const result = attributeOrigin(LineageGraph.fromImages(images), PAYMENTS, vulnerability, lookup({ [UBI]: [] }));
    expect(result).toMatchObject({ origin: ENTERPRISE, actionImage: ENTERPRISE, action: OriginAction.ALERT_OWNER, evidence: 'inferred' });
  });

  it('alerts the vendor for the same CVE on the COTS image, never a rebuild', () => {
    const result = attributeOrigin(seed, COTS, vulnerability, lookup({ [COTS]: [curlFinding(COTS)] }));
    expect(result).toMatchObject({ origin: UBI_MINIMAL, originInternal: false, actionImage: COTS, action: OriginAction.ALERT_VENDOR, evidence: 'inferred' });
    expect(result.reason).toContain('the vendor has to ship the fix');
  });

  it('alerts the vendor when the CVE reaches an internal image through a COTS parent', () => {
    const images: ImageNode[] = [
      ...seedImages(),
      { image: 'apps/agent-plugin', tier: 'application', owner: 'orders-team', parents: [{ image: COTS, role: 'runtime' }], build: { project: 'plugin' } },
    ];
    const result = attributeOrigin(LineageGraph.fromImages(images), 'apps/agent-plugin', vulnerability, lookup({ [COTS]: [curlFinding(COTS)], [UBI_MINIMAL]: [] }));
    expect(result).toMatchObject({ origin: COTS, originTier: 'cots', actionImage: COTS, action: OriginAction.ALERT_VENDOR, evidence: 'observed' });
  });

  describe('build parents', () => {
    const images: ImageNode[] = [
      ...seedImages(),
      {
        image: 'apps/static-site',
        tier: 'application',
        owner: 'web-team',
        parents: [
          { image: 'nginx:1.27', role: 'runtime' },
          { image: 'builders/python-ci', role: 'build' },
        ],
        build: { project: 'static-site' },
      },
    ];
    const graph = LineageGraph.fromImages(images);

    it('never attributes a CVE to a build parent, even one that carries it', () => {
      const findings = lookup({ 'builders/python-ci': [curlFinding('builders/python-ci')], 'nginx:1.27': [] });
      const result = attributeOrigin(graph, 'apps/static-site', vulnerability, findings);
      expect(result).toMatchObject({ origin: 'apps/static-site', action: OriginAction.REBUILD });
      expect(result.path.map((s) => s.image)).toEqual(['apps/static-site']);
    });

    it('follows the runtime parent instead', () => {
      const findings = lookup({ 'builders/python-ci': [curlFinding('builders/python-ci')] });
      const result = attributeOrigin(graph, 'apps/static-site', vulnerability, findings);
      expect(result).toMatchObject({ origin: 'nginx:1.27', actionImage: 'apps/static-site', action: OriginAction.ALERT_OWNER_UPSTREAM, evidence: 'inferred' });
    });
  });

  describe('several runtime parents', () => {
    // A diamond: top → left, right → bottom (two runtime parents, as in a shared multi-platform tag).
    const node = (image: string, parents: string[]): ImageNode => ({
      image,
      tier: 'enterprise',
      owner: 'platform-team',
      parents: parents.map((p) => ({ image: p, role: 'runtime' as const })),
      build: { project: image.replace('/', '-') },
    });
    const graph = LineageGraph.fromImages([node('org/top', []), node('org/left', ['org/top']), node('org/right', ['org/top']), node('org/bottom', ['org/left', 'org/right'])]);
    const carrying = (...images: string[]): Record<string, NormalizedFinding[]> =>
      Object.fromEntries(['org/top', 'org/left', 'org/right', 'org/bottom'].map((i) => [i, images.includes(i) ? [curlFinding(i)] : []]));

    it('goes to the top of a diamond when the top carries it', () => {
      const result = attributeOrigin(graph, 'org/bottom', vulnerability, lookup(carrying('org/bottom', 'org/left', 'org/right', 'org/top')));
      expect(result).toMatchObject({ origin: 'org/top', action: OriginAction.REBUILD, otherOrigins: [] });
      expect(result.path.map((s) => s.image)).toEqual(['org/top', 'org/left', 'org/bottom']);
    });

    it('names both sides when each carries it and the top does not', () => {
      const result = attributeOrigin(graph, 'org/bottom', vulnerability, lookup(carrying('org/bottom', 'org/left', 'org/right')));
      expect(result).toMatchObject({ origin: 'org/left', otherOrigins: ['org/right'] });
    });

    it('follows the only side that carries it', () => {
      const result = attributeOrigin(graph, 'org/bottom', vulnerability, lookup(carrying('org/bottom', 'org/right', 'org/top')));
      expect(result.origin).toBe('org/top');
      expect(result.path.map((s) => s.image)).toEqual(['org/top', 'org/right', 'org/bottom']);
    });

    it('prefers the observed side over the inferred one at the same height', () => {
      const records = carrying('org/bottom', 'org/right');
      delete records['org/left'];
      const result = attributeOrigin(graph, 'org/bottom', vulnerability, lookup(records));
      expect(result).toMatchObject({ origin: 'org/right', evidence: 'observed', otherOrigins: ['org/left'] });
    });

    it('prefers the higher origin even when it is only inferred', () => {
      const records = carrying('org/bottom', 'org/right');
      delete records['org/left'];
      delete records['org/top'];
      const result = attributeOrigin(graph, 'org/bottom', vulnerability, lookup(records));
      expect(result).toMatchObject({ origin: 'org/top', evidence: 'inferred' });
    });
  });

  it('fails for an image that is not in the lineage', () => {
    expect(() => attributeOrigin(seed, 'apps/unknown', vulnerability, lookup({}))).toThrow(ImageNotFoundError);
  });

  it('climbs a 20,000-image chain without overflowing the stack, each image looked up once', () => {
    const images: ImageNode[] = Array.from({ length: 20_000 }, (_, i) => ({
      image: `chain/i${i}`,
      tier: 'enterprise' as const,
      parents: i === 0 ? [] : [{ image: `chain/i${i - 1}`, role: 'runtime' as const }],
      build: { project: `p${i}` },
    }));
    const graph = LineageGraph.fromImages(images);
    let lookups = 0;
    const started = performance.now();
    const result = attributeOrigin(graph, 'chain/i19999', vulnerability, () => {
      lookups++;
      return undefined;
    });
    const elapsed = performance.now() - started;
    expect(result.origin).toBe('chain/i0');
    expect(result.path).toHaveLength(20_000);
    expect(lookups).toBe(19_999);
    expect(elapsed).toBeLessThan(2_000);
  });
});
