import { readFileSync } from 'fs';
import { join } from 'path';
import { decideRebuilds, ChildRecord } from '../../lambdas/domain/campaign';
import { parseConfig } from '../../lambdas/domain/config';
import {
  BuildPlacementKind,
  hubAccessRoleArn,
  InvalidRegistryScopeError,
  parseRegistryKey,
  REGISTRY_SCOPE_ENV,
  RegistryScope,
  UnconfiguredRegistryError,
} from '../../lambdas/domain/registry-scope';

const EXAMPLE = parseConfig(JSON.parse(readFileSync(join(__dirname, '../../examples/organization.config.json'), 'utf8')));
const scope = RegistryScope.forOrganization(EXAMPLE.organization);
const PAYMENTS = '222222222222.dkr.ecr.eu-west-1.amazonaws.com/apps/payments-api';
const ORDERS = '333333333333.dkr.ecr.us-east-1.amazonaws.com/apps/orders-api';
const DIGEST = `sha256:${'b'.repeat(64)}`;

describe('Class: RegistryScope', () => {
  describe('Method: keyOf', () => {
    it('keeps the bare repository for the hub and qualifies a spoke image by its registry', () => {
      expect(scope.keyOf('111111111111', 'eu-west-1', 'enterprise/python-311')).toBe('enterprise/python-311');
      expect(scope.keyOf('222222222222', 'eu-west-1', 'apps/payments-api')).toBe(PAYMENTS);
      expect(scope.keyOf('333333333333', 'us-east-1', 'apps/orders-api')).toBe(ORDERS);
    });

    it('keys everything by repository without an organization, whatever the account', () => {
      expect(RegistryScope.singleAccount().keyOf('444444444444', 'ap-south-1', 'apps/x')).toBe('apps/x');
    });

    it('refuses an account that is not configured, and a configured account in another region', () => {
      expect(() => scope.keyOf('444444444444', 'eu-west-1', 'apps/x')).toThrow(UnconfiguredRegistryError);
      expect(() => scope.keyOf('222222222222', 'us-east-1', 'apps/x')).toThrow(/222222222222 in us-east-1/);
    });
  });

  describe('Method: keysOf', () => {
    it('names a repository in the hub (bare) and in every spoke, and by itself without an organization', () => {
      expect(scope.keysOf('docker.io/library/python')).toEqual([
        'docker.io/library/python',
        '222222222222.dkr.ecr.eu-west-1.amazonaws.com/docker.io/library/python',
        '333333333333.dkr.ecr.us-east-1.amazonaws.com/docker.io/library/python',
      ]);
      expect(RegistryScope.singleAccount().keysOf('apps/x')).toEqual(['apps/x']);
    });
  });

  describe('Method: isInternal', () => {
    it('takes the hub bare keys and configured spokes as internal, other registries and tagged references as external', () => {
      expect(scope.isInternal('enterprise/python-311')).toBe(true);
      expect(scope.isInternal(PAYMENTS)).toBe(true);
      expect(scope.isInternal('444444444444.dkr.ecr.eu-west-1.amazonaws.com/apps/x')).toBe(false);
      expect(scope.isInternal(`${PAYMENTS}:1.0`)).toBe(false);
      expect(scope.isInternal('python:3.11')).toBe(false);
    });
  });

  describe('Method: pinnedReference', () => {
    it('pins each image in its own registry, external ones in theirs, and leaves an unknown digest unpinned', () => {
      const push = { account: '222222222222', region: 'eu-west-1' };
      expect(scope.pinnedReference('enterprise/python-311', DIGEST, push)).toBe(`111111111111.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311@${DIGEST}`);
      expect(scope.pinnedReference(PAYMENTS, DIGEST, push)).toBe(`${PAYMENTS}@${DIGEST}`);
      expect(scope.pinnedReference('registry.access.redhat.com/ubi9/python-311:1-34', DIGEST, push)).toBe(`registry.access.redhat.com/ubi9/python-311@${DIGEST}`);
      expect(scope.pinnedReference(PAYMENTS, undefined, push)).toBe(PAYMENTS);
    });

    it('pins a bare key in the pushing registry without an organization, as before', () => {
      expect(RegistryScope.singleAccount().pinnedReference('apps/x', DIGEST, { account: '123456789012', region: 'us-west-2' })).toBe(`123456789012.dkr.ecr.us-west-2.amazonaws.com/apps/x@${DIGEST}`);
    });
  });

  describe('Method: placement', () => {
    it('builds hub images in the hub and a same-region spoke image through that spoke role', () => {
      expect(scope.placement('enterprise/python-311')).toEqual({ kind: BuildPlacementKind.HUB, buildAccount: '111111111111', buildRegion: 'eu-west-1' });
      expect(scope.placement(PAYMENTS)).toEqual({
        kind: BuildPlacementKind.SPOKE,
        buildAccount: '222222222222',
        buildRegion: 'eu-west-1',
        buildRoleArn: 'arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1',
      });
      expect(RegistryScope.singleAccount().placement('apps/x')).toEqual({ kind: BuildPlacementKind.HUB });
    });

    it('places a build of a spoke outside the hub region in that spoke and region, through its own regional role', () => {
      expect(scope.placement(ORDERS)).toEqual({
        kind: BuildPlacementKind.SPOKE,
        buildAccount: '333333333333',
        buildRegion: 'us-east-1',
        buildRoleArn: 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1',
      });
    });
  });

  describe('Method: buildRoleArns', () => {
    it('lists exactly the roles of the spokes in the hub region', () => {
      expect(scope.buildRoleArns()).toEqual(['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1']);
      expect(RegistryScope.singleAccount().buildRoleArns()).toEqual([]);
    });
  });

  describe('Method: remoteBuildRoleArns', () => {
    it('lists exactly the roles of the spokes outside the hub region', () => {
      expect(scope.remoteBuildRoleArns()).toEqual(['arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1']);
      expect(RegistryScope.singleAccount().remoteBuildRoleArns()).toEqual([]);
    });
  });

  describe('Method: hubAccessRoleArns', () => {
    it('lists the role of every configured spoke, in the hub region or not, and none without an organization', () => {
      expect(scope.hubAccessRoleArns()).toEqual(['arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1', 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1']);
      expect(scope.hubAccessRoleArns()).toEqual([...scope.buildRoleArns(), ...scope.remoteBuildRoleArns()]);
      expect(RegistryScope.singleAccount().hubAccessRoleArns()).toEqual([]);
    });
  });

  describe('Method: canonicalKey', () => {
    it('turns a key naming the hub registry into the bare repository and leaves others alone', () => {
      expect(scope.canonicalKey('111111111111.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311')).toBe('enterprise/python-311');
      expect(scope.canonicalKey(PAYMENTS)).toBe(PAYMENTS);
    });
  });

  describe('Method: fromEnvironment', () => {
    it('round-trips the scope through its environment variable, and is single-account when unset', () => {
      const again = RegistryScope.fromEnvironment(scope.toEnvironment());
      expect(again.keyOf('222222222222', 'eu-west-1', 'apps/payments-api')).toBe(PAYMENTS);
      expect(RegistryScope.fromEnvironment(undefined).toEnvironment()).toBeUndefined();
      expect(REGISTRY_SCOPE_ENV).toBe('PATCHLINE_REGISTRY_SCOPE');
    });

    it('refuses a value that is not JSON or not a scope', () => {
      expect(() => RegistryScope.fromEnvironment('{')).toThrow(InvalidRegistryScopeError);
      expect(() => RegistryScope.fromEnvironment(JSON.stringify({ hub: { account: '1', region: 'eu-west-1' }, spokes: [] }))).toThrow(/hub.account/);
    });
  });
});

describe('Function: parseRegistryKey', () => {
  it('reads account, region and repository of a qualified key, including the China partition host', () => {
    expect(parseRegistryKey(PAYMENTS)).toEqual({ account: '222222222222', region: 'eu-west-1', repository: 'apps/payments-api' });
    expect(parseRegistryKey('222222222222.dkr.ecr.cn-north-1.amazonaws.com.cn/apps/x')).toEqual({ account: '222222222222', region: 'cn-north-1', repository: 'apps/x' });
  });

  it('refuses bare repositories, tagged references and other hosts', () => {
    for (const key of ['apps/x', `${PAYMENTS}:1.0`, 'ghcr.io/org/x', '2222.dkr.ecr.eu-west-1.amazonaws.com/apps/x']) expect(parseRegistryKey(key)).toBeUndefined();
  });
});

describe('Function: hubAccessRoleArn', () => {
  it('uses the partition of the region', () => {
    expect(hubAccessRoleArn('222222222222', 'cn-north-1')).toBe('arn:aws-cn:iam::222222222222:role/PatchlineHubAccess-cn-north-1');
    expect(hubAccessRoleArn('222222222222', 'us-gov-west-1')).toBe('arn:aws-us-gov:iam::222222222222:role/PatchlineHubAccess-us-gov-west-1');
  });
});

describe('Function: decideRebuilds (placement)', () => {
  const child = (image: string): ChildRecord => ({ image, tier: 'application', parents: [{ image: 'enterprise/python-311', role: 'runtime' }], build: { project: 'apps-x' } });
  const decide = (children: ChildRecord[]) =>
    decideRebuilds({
      campaignId: 'c-1',
      pushedImage: 'enterprise/python-311',
      pushedDigest: DIGEST,
      children,
      memberState: () => 'pending',
      parentDigest: () => undefined,
      imageUri: (i, d) => scope.pinnedReference(i, d, { account: '111111111111', region: 'eu-west-1' }),
      priority: () => 1,
      placement: (i) => scope.placement(i),
    });

  it('carries the spoke account, region and role on a spoke child, and the hub account without a role on a hub child', () => {
    const { start } = decide([child(PAYMENTS), child('apps/hub-app')]);
    const byImage = new Map(start.map((s) => [s.image, s]));
    expect(byImage.get(PAYMENTS)).toMatchObject({ buildAccount: '222222222222', buildRegion: 'eu-west-1', buildRoleArn: 'arn:aws:iam::222222222222:role/PatchlineHubAccess-eu-west-1' });
    expect(byImage.get('apps/hub-app')).toMatchObject({ buildAccount: '111111111111', buildRegion: 'eu-west-1' });
    expect(byImage.get('apps/hub-app')!.buildRoleArn).toBeUndefined();
  });

  it('carries the region and regional role of a spoke outside the hub region (built through start-remote-build)', () => {
    const { start } = decide([child(ORDERS)]);
    expect(start).toHaveLength(1);
    expect(start[0]).toMatchObject({ buildAccount: '333333333333', buildRegion: 'us-east-1', buildRoleArn: 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1' });
  });

  it('refuses to start an unreachable child: skipped with the reason', () => {
    const decision = decideRebuilds({
      campaignId: 'c-1',
      pushedImage: 'enterprise/python-311',
      pushedDigest: DIGEST,
      children: [child(ORDERS)],
      memberState: () => 'pending',
      parentDigest: () => undefined,
      imageUri: (i, d) => scope.pinnedReference(i, d, { account: '111111111111', region: 'eu-west-1' }),
      priority: () => 1,
      placement: () => ({ kind: BuildPlacementKind.UNREACHABLE, reason: 'the owning account is gone' }),
    });
    expect(decision.start).toEqual([]);
    expect(decision.skip).toEqual([{ image: ORDERS, reason: expect.stringContaining('the owning account is gone') }]);
  });
});
