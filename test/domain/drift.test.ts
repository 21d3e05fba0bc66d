import { join } from 'path';
import { loadLineage } from '../../cli/input-files';
import { DriftSubject, findDrift, InvalidVersionTimeError, ParentVersion } from '../../lambdas/domain/drift';
import { digestOf, REPO_ROOT } from '../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
const UBI = 'registry.access.redhat.com/ubi9/python-311:1-34';
const NOW = new Date('2025-06-30T00:00:00Z');

/** The UBI base moves every 2-3 months; enterprise/python-311 was rebuilt on the first of them. */
const UBI_HISTORY: ParentVersion[] = [
  { digest: digestOf('ubi-1'), pushedAt: '2025-01-10T00:00:00Z' },
  { digest: digestOf('ubi-2'), pushedAt: '2025-03-20T00:00:00Z' },
  { digest: digestOf('ubi-3'), pushedAt: '2025-06-01T00:00:00Z' },
];
const ENTERPRISE_HISTORY: ParentVersion[] = [{ digest: digestOf('ent-1'), pushedAt: '2025-01-11T00:00:00Z' }];

function subjects(builtFromUbi: string | undefined): DriftSubject[] {
  return SEED.filter((n) => n.image === 'enterprise/python-311' || n.image === 'apps/payments-api').map((n) => ({
    image: n.image,
    owner: n.owner,
    parents: n.parents.map((p) => p.image),
    current:
      n.image === 'enterprise/python-311'
        ? { digest: digestOf('ent-1'), pushedAt: '2025-01-11T00:00:00Z', ...(builtFromUbi && { parentDigests: { [UBI]: builtFromUbi } as Record<string, string> }) }
        : { digest: digestOf('pay-1'), pushedAt: '2025-01-12T00:00:00Z', parentDigests: { 'enterprise/python-311': digestOf('ent-1') } },
  }));
}

const history = (parent: string): ParentVersion[] | undefined => (parent === UBI ? UBI_HISTORY : parent === 'enterprise/python-311' ? ENTERPRISE_HISTORY : undefined);

describe('Function: findDrift', () => {
  it('lists an image built from an older parent digest with versions and days behind', () => {
    const report = findDrift(subjects(digestOf('ubi-1')), history, NOW);
    expect(report.drifted).toHaveLength(1);
    const [drifted] = report.drifted;
    expect(drifted).toMatchObject({ image: 'enterprise/python-311', owner: 'platform-team', versionsBehind: 2 });
    // Behind since ubi-2 appeared (2025-03-20): 102 days before NOW.
    expect(drifted.daysBehind).toBe(Math.floor((NOW.getTime() - Date.parse('2025-03-20T00:00:00Z')) / 86_400_000));
    expect(drifted.parents[0]).toMatchObject({ parent: UBI, builtFrom: digestOf('ubi-1'), latest: digestOf('ubi-3'), exact: true });
  });

  it('does not list an image built from the parent’s newest digest', () => {
    const report = findDrift(subjects(digestOf('ubi-3')), history, NOW);
    expect(report.drifted.map((d) => d.image)).toEqual([]);
  });

  it('counts versions after the image was built when the digest predates the recorded history', () => {
    const report = findDrift(subjects(digestOf('ubi-0')), history, NOW);
    expect(report.drifted[0].parents[0]).toMatchObject({ exact: false, versionsBehind: 2 });
  });

  it('reports images whose parent digest is not recorded as unknown', () => {
    const report = findDrift(subjects(undefined), history, NOW);
    expect(report.unknown).toEqual([expect.objectContaining({ image: 'enterprise/python-311', parent: UBI })]);
  });

  it('refuses a version with an unparseable time', () => {
    expect(() => findDrift(subjects(digestOf('ubi-1')), () => [{ digest: digestOf('x'), pushedAt: 'last tuesday' }], NOW)).toThrow(InvalidVersionTimeError);
  });
});
