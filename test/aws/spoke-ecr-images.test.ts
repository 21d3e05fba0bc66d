import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { AssumedRoleEcrImages, awsSpokeEcrImages, SPOKE_SESSION_SECONDS, SpokeRegistryAccessError, SpokeSession } from '../../lambdas/aws/spoke-ecr-images';
import { EcrImages } from '../../lambdas/aws/ecr-images';
import { TemporaryCredentials } from '../../lambdas/aws/remote-codebuild';

const sts = mockClient(STSClient);
beforeEach(() => sts.reset());

const ORDERS = { account: '333333333333', region: 'us-east-1' };
const ORDERS_ROLE = 'arn:aws:iam::333333333333:role/PatchlineHubAccess-us-east-1';
const NOW = new Date('2024-03-01T00:00:00Z');

/** A reader per session, remembering the session and credentials it was made for. */
function recordingReaders(): { made: Array<{ session: SpokeSession; credentials: TemporaryCredentials }>; reader: (session: SpokeSession, credentials: TemporaryCredentials) => EcrImages } {
  const made: Array<{ session: SpokeSession; credentials: TemporaryCredentials }> = [];
  return {
    made,
    reader: (session, credentials) => {
      made.push({ session, credentials });
      return { getManifest: async () => undefined, getBlob: async () => '', repositoryTags: async () => ({}) };
    },
  };
}

describe('Class: AssumedRoleEcrImages', () => {
  describe('Method: readerOf', () => {
    it('assumes the spoke hub-access role for 900 s and gives the reader that session', async () => {
      const { made, reader } = recordingReaders();
      const assumed: unknown[] = [];
      const images = new AssumedRoleEcrImages({
        assumeRole: async (request) => {
          assumed.push(request);
          return { accessKeyId: 'ASIA1', secretAccessKey: 's', sessionToken: 't', expiration: new Date(NOW.getTime() + 900_000) };
        },
        reader,
        now: () => NOW,
      });
      const first = await images.readerOf(ORDERS, 'learn-abc-apps.orders-api');
      expect(await images.readerOf(ORDERS, 'learn-def-apps.orders-api')).toBe(first);
      expect(assumed).toEqual([{ roleArn: ORDERS_ROLE, region: 'us-east-1', sessionName: 'learn-abc-apps.orders-api', durationSeconds: SPOKE_SESSION_SECONDS }]);
      expect(SPOKE_SESSION_SECONDS).toBe(900);
      expect(made).toEqual([{ session: { ...ORDERS, roleArn: ORDERS_ROLE, sessionName: 'learn-abc-apps.orders-api' }, credentials: expect.objectContaining({ accessKeyId: 'ASIA1' }) }]);
    });

    it('keeps no session whose credentials carry no expiration', async () => {
      const { made, reader } = recordingReaders();
      const images = new AssumedRoleEcrImages({ assumeRole: async () => ({ accessKeyId: 'ASIA1', secretAccessKey: 's' }), reader });
      await images.readerOf(ORDERS, 'learn-1');
      await images.readerOf(ORDERS, 'learn-2');
      expect(made.map((m) => m.session.sessionName)).toEqual(['learn-1', 'learn-2']);
    });

    it('fails with SpokeRegistryAccessError when STS returns no credentials', async () => {
      sts.on(AssumeRoleCommand).resolves({});
      const images = awsSpokeEcrImages({ now: () => NOW });
      const failure = await images.readerOf(ORDERS, 'learn-1').catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(SpokeRegistryAccessError);
      expect((failure as SpokeRegistryAccessError).message).toContain(`could not assume ${ORDERS_ROLE} in us-east-1`);
      expect(sts.commandCalls(AssumeRoleCommand).map((c) => c.args[0].input)).toEqual([{ RoleArn: ORDERS_ROLE, RoleSessionName: 'learn-1', DurationSeconds: 900 }]);
    });
  });
});
