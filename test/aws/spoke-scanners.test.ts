import { DescribeImagesCommand, ECRClient } from '@aws-sdk/client-ecr';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { SpokeRegistryAccessError } from '../../lambdas/aws/spoke-ecr-images';
import { AssumedRoleSpokeScanners, awsSpokeScanners, RESCAN_SESSION_SECONDS } from '../../lambdas/aws/spoke-scanners';

const sts = mockClient(STSClient);
const ecr = mockClient(ECRClient);
beforeEach(() => {
  sts.reset();
  ecr.reset();
});

const ORDERS = { account: '333333333333', region: 'us-east-1' };
const ORDERS_ROLE = 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1';

describe('Class: AssumedRoleSpokeScanners', () => {
  describe('Method: scannersOf', () => {
    it('assumes the hub-access role for an hour and shares the session until 11 minutes before it expires', async () => {
      let now = new Date('2024-03-01T00:00:00Z');
      const assumed: unknown[] = [];
      const scanners = new AssumedRoleSpokeScanners({
        assumeRole: async (request) => {
          assumed.push(request);
          return { accessKeyId: `ASIA${assumed.length}`, secretAccessKey: 's', expiration: new Date(now.getTime() + request.durationSeconds * 1000) };
        },
        clients: () => ({ ecr: {} as never, inspector: {} as never }),
        now: () => now,
      });
      const first = await scanners.scannersOf(ORDERS, 'patchline-registry-rescan');
      now = new Date(now.getTime() + 48 * 60_000);
      expect(await scanners.scannersOf(ORDERS, 'patchline-registry-rescan')).toBe(first);
      now = new Date(now.getTime() + 2 * 60_000);
      expect(await scanners.scannersOf(ORDERS, 'patchline-registry-rescan')).not.toBe(first);
      expect(RESCAN_SESSION_SECONDS).toBe(3600);
      expect(assumed).toEqual([
        { roleArn: ORDERS_ROLE, region: 'us-east-1', sessionName: 'patchline-registry-rescan', durationSeconds: 3600 },
        { roleArn: ORDERS_ROLE, region: 'us-east-1', sessionName: 'patchline-registry-rescan', durationSeconds: 3600 },
      ]);
    });

    it('fails with SpokeRegistryAccessError naming the role and region when the spoke refuses the AssumeRole', async () => {
      sts.on(AssumeRoleCommand).rejects(Object.assign(new Error('not authorized to perform: sts:AssumeRole'), { name: 'AccessDenied' }));
      const failure = await awsSpokeScanners().scannersOf(ORDERS, 'patchline-registry-rescan').catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(SpokeRegistryAccessError);
      expect((failure as Error).message).toContain(`could not assume ${ORDERS_ROLE} in us-east-1`);
      expect((failure as Error).message).toContain('not authorized to perform: sts:AssumeRole');
      expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([{ RoleArn: ORDERS_ROLE, RoleSessionName: 'patchline-registry-rescan', DurationSeconds: 3600 }]);
    });

    it('reads the spoke\'s ECR in its region with the session\'s credentials', async () => {
      sts.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: 'ASIAORDERS', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3_600_000) } });
      ecr.on(DescribeImagesCommand).resolves({ imageDetails: [] });
      const { ecr: registry } = await awsSpokeScanners().scannersOf(ORDERS, 'patchline-registry-rescan');
      expect(await registry.images('apps/orders-api')).toEqual([]);
      const call = ecr.commandCalls(DescribeImagesCommand)[0];
      expect(call.args[0].input).toMatchObject({ repositoryName: 'apps/orders-api' });
      const config = (call.thisValue as ECRClient).config;
      expect(await config.region()).toBe('us-east-1');
      expect(await (config.credentials as () => Promise<{ accessKeyId: string }>)()).toMatchObject({ accessKeyId: 'ASIAORDERS' });
    });
  });
});
