import { CampaignStatus } from '../../lambdas/domain/campaign';
import { handoverCampaign, pinnedImageReference } from '../../lambdas/domain/campaign-handover';
import { digestOf } from '../support/template';

describe('Function: handoverCampaign', () => {
  const ended = { campaignId: 'c-aaaaaaaaaaaaaaaaaaaa', status: CampaignStatus.SUPERSEDED };

  it('names the root\u2019s current campaign when the ended one was superseded', () => {
    expect(handoverCampaign(ended, { campaignId: 'c-bbbbbbbbbbbbbbbbbbbb' })).toBe('c-bbbbbbbbbbbbbbbbbbbb');
  });

  it('refuses to hand over from a running campaign, or one that does not exist', () => {
    expect(handoverCampaign({ campaignId: ended.campaignId }, { campaignId: 'c-bbbbbbbbbbbbbbbbbbbb' })).toBeUndefined();
    expect(handoverCampaign({ ...ended, status: CampaignStatus.RUNNING }, { campaignId: 'c-bbbbbbbbbbbbbbbbbbbb' })).toBeUndefined();
    expect(handoverCampaign(undefined, { campaignId: 'c-bbbbbbbbbbbbbbbbbbbb' })).toBeUndefined();
  });

  it('refuses to hand over to the ended campaign itself, or when the root has no pointer', () => {
    expect(handoverCampaign(ended, { campaignId: ended.campaignId })).toBeUndefined();
    expect(handoverCampaign(ended, undefined)).toBeUndefined();
  });
});

describe('Function: pinnedImageReference', () => {
  const registry = { account: '123456789012', region: 'eu-west-1' };
  const digest = digestOf('parent');

  it('pins an internal image by digest in the registry\u2019s ECR (the China partition\u2019s domain for cn- regions)', () => {
    expect(pinnedImageReference(registry, 'enterprise/python-311', digest)).toBe(`123456789012.dkr.ecr.eu-west-1.amazonaws.com/enterprise/python-311@${digest}`);
    expect(pinnedImageReference({ ...registry, region: 'cn-north-1' }, 'enterprise/python-311', digest)).toBe(`123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/enterprise/python-311@${digest}`);
  });

  it('pins an external image in its own registry, its tag replaced by the digest', () => {
    expect(pinnedImageReference(registry, 'registry.access.redhat.com/ubi9/python-311:1-34', digest)).toBe(`registry.access.redhat.com/ubi9/python-311@${digest}`);
    expect(pinnedImageReference(registry, 'localhost:5000/base:1', digest)).toBe(`localhost:5000/base@${digest}`);
  });

  it('refuses to invent a pin for an image whose digest is unknown: the key itself', () => {
    expect(pinnedImageReference(registry, 'enterprise/python-311', undefined)).toBe('enterprise/python-311');
    expect(pinnedImageReference(registry, 'python:3.11', undefined)).toBe('python:3.11');
  });
});
