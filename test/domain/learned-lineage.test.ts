import { readFileSync } from 'fs';
import { join } from 'path';
import {
  ecrRepositoryArn,
  fieldsFromRepositoryTags,
  inferTier,
  learnFromPush,
  learnLineageSessionName,
  learnRuntimeParent,
  NoPlatformManifestError,
  parentKeyOfBase,
  platformManifestDigest,
  sameParent,
} from '../../lambdas/domain/learned-lineage';
import { ImageNode } from '../../lambdas/domain/lineage';
import { readBaseImage } from '../../lambdas/domain/oci-base-image';

const DATA = join(__dirname, '../../../shared/data');
/** A real edge of the Docker Official Images graph: child tag → its final-stage base. */
const [CHILD, PARENT] = readFileSync(join(DATA, 'lineage/official-images-edges.tsv'), 'utf8').split('\n').find((l) => l && !l.startsWith('#'))!.split('\t');
const PUSH = { account: '123456789012', region: 'us-west-2' };
const D = `sha256:${'a'.repeat(64)}`;

describe('Function: parentKeyOfBase', () => {
  it('keys a repository of the pushing account’s own registry by its bare name', () => {
    const lookup = readBaseImage({ schemaVersion: 2, manifests: [], annotations: { 'org.opencontainers.image.base.name': `123456789012.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311@${D}` } });
    expect(lookup.found && parentKeyOfBase(lookup.baseImage, PUSH)).toBe('enterprise/python-311');
  });

  it('keeps an upstream base (a real official-images parent) as its familiar key, and another account’s ECR as external', () => {
    const upstream = readBaseImage({ schemaVersion: 2, manifests: [], annotations: { 'org.opencontainers.image.base.name': `docker.io/library/${PARENT.trim()}` } });
    expect(upstream.found && parentKeyOfBase(upstream.baseImage, PUSH)).toBe(PARENT.trim().replace(/^library\//, ''));
    expect(CHILD).toBeTruthy();
    const other = readBaseImage({ schemaVersion: 2, manifests: [], annotations: { 'org.opencontainers.image.base.name': '999999999999.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311:1' } });
    expect(other.found && parentKeyOfBase(other.baseImage, PUSH)).toBe('999999999999.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311:1');
  });

  it('has no key for a digest-only declaration', () => {
    expect(parentKeyOfBase({ digest: D, source: 'annotation' }, PUSH)).toBeUndefined();
  });
});

describe('Function: sameParent', () => {
  it('matches a tag-declared external parent pinned by digest, but not another tag or an internal image', () => {
    expect(sameParent('registry.access.redhat.com/ubi9/python-311:1-34', `registry.access.redhat.com/ubi9/python-311@${D}`)).toBe(true);
    expect(sameParent('python:3.11', 'python:3.12')).toBe(false);
    expect(sameParent('enterprise/python-311', 'enterprise/python-312')).toBe(false);
  });
});

describe('Function: learnRuntimeParent', () => {
  const payments: ImageNode = {
    image: 'apps/payments-api',
    tier: 'application',
    owner: 'payments-team',
    parents: [{ image: 'enterprise/python-311', role: 'runtime' }, { image: 'builders/python-ci', role: 'build' }],
    build: { project: 'apps-payments-api' },
  };

  it('adds an unknown image with a tier from its repository name', () => {
    expect(learnRuntimeParent(undefined, 'apps/new', 'enterprise/python-311')).toEqual({ change: 'added', node: { image: 'apps/new', tier: 'application', parents: [{ image: 'enterprise/python-311', role: 'runtime' }] } });
  });

  it('changes nothing when the runtime parent is the declared one', () => {
    expect(learnRuntimeParent(payments, payments.image, 'enterprise/python-311')).toEqual({ change: 'unchanged', node: payments });
  });

  it('replaces only the runtime parent and keeps build parents and fields', () => {
    expect(learnRuntimeParent(payments, payments.image, 'python:3.12')).toEqual({
      change: 'reparented',
      previousParent: 'enterprise/python-311',
      node: { ...payments, parents: [{ image: 'python:3.12', role: 'runtime' }, { image: 'builders/python-ci', role: 'build' }] },
    });
  });

  it('promotes a build-stage parent to runtime without listing it twice', () => {
    expect(learnRuntimeParent(payments, payments.image, 'builders/python-ci').node.parents).toEqual([{ image: 'builders/python-ci', role: 'runtime' }]);
  });

  it('gives an external placeholder pushed to our registry a real tier', () => {
    expect(learnRuntimeParent({ image: 'enterprise/jdk-21', tier: 'external', parents: [] }, 'enterprise/jdk-21', 'eclipse-temurin:21').node.tier).toBe('enterprise');
  });
});

describe('Function: learnFromPush', () => {
  const orders: ImageNode = {
    image: 'apps/orders-api',
    tier: 'application',
    owner: 'orders-team',
    parents: [{ image: 'enterprise/python-311', role: 'runtime' }],
    build: { project: 'apps-orders-api' },
  };
  const { owner: _owner, ...unowned } = orders;

  it('learns the declared base of an image that has its owner and build project without asking for tags', () => {
    expect(learnFromPush(orders, { image: orders.image, parent: 'python:3.12', baseDigest: D })).toEqual({
      change: 'reparented',
      previousParent: 'enterprise/python-311',
      parent: 'python:3.12',
      node: { ...orders, parents: [{ image: 'python:3.12', role: 'runtime' }] },
      write: true,
      ownerSource: 'lineage',
      needsTags: false,
      taken: {},
    });
  });

  it('asks for the repository tags, writing nothing yet, when the node lacks an owner or build project', () => {
    expect(learnFromPush(unowned, { image: orders.image, parent: 'python:3.12' })).toMatchObject({ write: false, needsTags: true, change: 'reparented', ownerSource: null });
    expect(learnFromPush(undefined, { image: 'apps/new', parent: 'python:3.12' })).toMatchObject({ write: false, needsTags: true, change: 'added' });
  });

  it('takes only the fields the stored node lacks from the tags, and writes them even without a declared base', () => {
    expect(learnFromPush(unowned, { image: orders.image, tags: { owner: 'tagged-team', project: 'tagged-project', notes: [] } })).toEqual({
      change: null,
      node: { ...unowned, owner: 'tagged-team' },
      write: true,
      ownerSource: 'repository-tag',
      needsTags: false,
      taken: { owner: 'tagged-team' },
    });
  });

  it('writes nothing for a push the stored node already records, whatever the tags say', () => {
    expect(learnFromPush(orders, { image: orders.image, parent: 'enterprise/python-311', tags: { owner: 'other-team', notes: [] } })).toMatchObject({
      change: 'unchanged',
      node: orders,
      write: false,
      ownerSource: 'lineage',
      taken: {},
    });
  });

  it('gives a digest-only base to the runtime parent already known, and learns nothing for an unknown image', () => {
    expect(learnFromPush(orders, { image: orders.image, baseDigest: D })).toMatchObject({ parent: 'enterprise/python-311', change: null, write: false });
    expect(learnFromPush(undefined, { image: 'apps/new', baseDigest: D })).toEqual({ change: null, write: false, ownerSource: null, needsTags: false, taken: {} });
  });
});

describe('Function: inferTier', () => {
  it.each([
    ['enterprise/python-311', 'enterprise'],
    ['builders/maven', 'builder'],
    ['vendor/agent', 'cots'],
    ['base/ubi9', 'base'],
    ['team-x/service', 'application'],
  ])('%s → %s', (repository, tier) => expect(inferTier(repository)).toBe(tier));
});

describe('Function: fieldsFromRepositoryTags', () => {
  const policy = { ownerTagKey: 'owner', buildProjectTagKey: 'build-project', knownOwners: ['payments-team'], buildProjects: ['apps-*'] };

  it('takes a configured owner and a project under a configured prefix', () => {
    expect(fieldsFromRepositoryTags({ owner: 'payments-team', 'build-project': 'apps-new' }, policy)).toEqual({ owner: 'payments-team', project: 'apps-new', notes: [] });
  });

  it('refuses hostile and unconfigured values with a note, and ignores inherited keys', () => {
    const hostile = JSON.parse('{"__proto__": {"owner": "payments-team"}, "build-project": "enterprise-x"}') as Record<string, string>;
    expect(fieldsFromRepositoryTags(hostile, policy)).toEqual({ notes: [expect.stringContaining('not a configured CodeBuild project')] });
    const result = fieldsFromRepositoryTags({ owner: '<script>', 'build-project': 'apps-$(id)' }, policy);
    expect(result.owner).toBeUndefined();
    expect(result.notes).toHaveLength(2);
    expect(fieldsFromRepositoryTags({ owner: 'orders-team' }, policy).notes[0]).toContain('not a configured owner');
  });
});

describe('Function: platformManifestDigest', () => {
  const entry = (digest: string, os: string, architecture: string, extra: Record<string, unknown> = {}) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1, platform: { os, architecture }, ...extra });
  const d = (c: string) => `sha256:${c.repeat(64)}`;

  it('prefers linux/amd64 and never picks an attestation', () => {
    const index = { schemaVersion: 2, manifests: [entry(d('1'), 'unknown', 'unknown'), entry(d('2'), 'linux', 's390x'), entry(d('3'), 'linux', 'amd64')] };
    expect(platformManifestDigest(JSON.stringify(index))).toBe(d('3'));
    expect(platformManifestDigest(JSON.stringify({ manifests: [entry(d('2'), 'linux', 's390x')] }))).toBe(d('2'));
  });

  it('fails on an index with only attestations or malformed entries', () => {
    expect(() => platformManifestDigest(JSON.stringify({ manifests: [entry(d('1'), 'unknown', 'unknown'), { digest: 'sha256:../x' }] }))).toThrow(NoPlatformManifestError);
    expect(() => platformManifestDigest('not json')).toThrow(NoPlatformManifestError);
  });
});

describe('Function: ecrRepositoryArn', () => {
  it('uses the partition of the region', () => {
    expect(ecrRepositoryArn('123456789012', 'cn-north-1', 'apps/x')).toBe('arn:aws-cn:ecr:cn-north-1:123456789012:repository/apps/x');
    expect(ecrRepositoryArn('123456789012', 'us-gov-west-1', 'apps/x')).toBe('arn:aws-us-gov:ecr:us-gov-west-1:123456789012:repository/apps/x');
  });
});

describe('Function: learnLineageSessionName', () => {
  const STS_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;

  it('names the session by the pushed digest and repository, in the characters STS accepts', () => {
    expect(learnLineageSessionName('apps/payments-api', D)).toBe('learn-aaaaaaaaaaaa-apps.payments-api');
    expect(learnLineageSessionName('apps/payments-api', D)).toMatch(STS_SESSION_NAME);
  });

  it('keeps the digest and cuts the repository at 64 characters', () => {
    const name = learnLineageSessionName(`team/${'x'.repeat(200)}`, `sha256:${'0123456789ab'.repeat(6)}`);
    expect(name).toHaveLength(64);
    expect(name.startsWith('learn-0123456789ab-team.xxx')).toBe(true);
    expect(name).toMatch(STS_SESSION_NAME);
  });
});
