import { DescribeImagesCommand, DescribeRepositoriesCommand, ECRClient, LimitExceededException, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { mockClient } from 'aws-sdk-client-mock';
import { EcrRegistry, matchesRepositoryPattern, StartScanResult } from '../../lambdas/aws/ecr-registry';
import { digestOf, PUSH_SAMPLE, sampleEvent } from '../support/template';

const ecr = mockClient(ECRClient);
const PUSH = sampleEvent(PUSH_SAMPLE) as { detail: Record<string, string> };

beforeEach(() => ecr.reset());

describe('Class: EcrRegistry', () => {
  describe('Method: repositoriesPage', () => {
    it('asks for 1,000 repositories a page, passes the token and keeps the configured ones', async () => {
      ecr.on(DescribeRepositoriesCommand).resolves({
        repositories: [
          { repositoryName: 'enterprise/python-311', repositoryArn: 'arn:aws:ecr:us-east-1:123456789012:repository/enterprise/python-311' },
          { repositoryName: 'scratch/experiment' },
        ],
        nextToken: 'page-2',
      });
      const page = await new EcrRegistry(new ECRClient({})).repositoriesPage(['enterprise/*', 'apps/*'], 'page-1');
      expect(ecr.commandCalls(DescribeRepositoriesCommand)[0].args[0].input).toEqual({ maxResults: 1000, nextToken: 'page-1' });
      expect(page).toEqual({ items: [expect.objectContaining({ name: 'enterprise/python-311', scanOnPush: false })], nextToken: 'page-2' });
    });
  });

  describe('Method: images', () => {
    it('follows nextToken through every page of DescribeImages', async () => {
      const repository = PUSH.detail['repository-name'];
      ecr
        .on(DescribeImagesCommand, { repositoryName: repository, maxResults: 1000, filter: { tagStatus: 'ANY' } })
        .resolves({
          // The documentation sample's digest is shortened (not sha256:<64 hex>): skipped, never used as a key.
          imageDetails: [{ imageDigest: PUSH.detail['image-digest'] }, { imageDigest: digestOf('a'), imageTags: [PUSH.detail['image-tag']], imagePushedAt: new Date('2025-06-01T00:00:00Z') }],
          nextToken: 't2',
        })
        .on(DescribeImagesCommand, { repositoryName: repository, maxResults: 1000, filter: { tagStatus: 'ANY' }, nextToken: 't2' })
        .resolves({
          imageDetails: [
            { imageDigest: digestOf('b'), imageScanStatus: { status: 'COMPLETE' }, imageScanFindingsSummary: { imageScanCompletedAt: new Date('2025-06-02T00:00:00Z') } },
            { imageDigest: 'not-a-digest' },
          ],
        });
      const images = await new EcrRegistry(new ECRClient({})).images(repository);
      expect(ecr.commandCalls(DescribeImagesCommand)).toHaveLength(2);
      expect(images).toEqual([
        { repository, digest: digestOf('a'), tags: [PUSH.detail['image-tag']], pushedAt: '2025-06-01T00:00:00.000Z' },
        { repository, digest: digestOf('b'), tags: [], scanStatus: 'COMPLETE', lastScanAt: '2025-06-02T00:00:00.000Z' },
      ]);
    });
  });

  describe('Method: startImageScan', () => {
    it('starts a scan of one digest', async () => {
      ecr.on(StartImageScanCommand).resolves({});
      await expect(new EcrRegistry(new ECRClient({}), { registryId: '123456789012' }).startImageScan('apps/payments-api', digestOf('a'))).resolves.toBe(StartScanResult.STARTED);
      expect(ecr.commandCalls(StartImageScanCommand)[0].args[0].input).toEqual({ repositoryName: 'apps/payments-api', imageId: { imageDigest: digestOf('a') }, registryId: '123456789012' });
    });

    it('answers DAILY_LIMIT when ECR refuses a second scan within a day', async () => {
      ecr.on(StartImageScanCommand).rejects(new LimitExceededException({ message: 'The scan quota per image has been exceeded. Wait and try again.', $metadata: {} }));
      await expect(new EcrRegistry(new ECRClient({})).startImageScan('apps/payments-api', digestOf('a'))).resolves.toBe(StartScanResult.DAILY_LIMIT);
    });

    it('fails on any other error', async () => {
      ecr.on(StartImageScanCommand).rejects(new Error('AccessDenied'));
      await expect(new EcrRegistry(new ECRClient({})).startImageScan('apps/payments-api', digestOf('a'))).rejects.toThrow('AccessDenied');
    });
  });
});

describe('Function: matchesRepositoryPattern', () => {
  it('matches prefixes, exact names and everything', () => {
    expect([matchesRepositoryPattern('apps/*', 'apps/x'), matchesRepositoryPattern('apps/x', 'apps/xy'), matchesRepositoryPattern('*', 'a')]).toEqual([true, false, true]);
  });
});
