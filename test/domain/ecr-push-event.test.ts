import { ecrImageUri, InvalidEventError, parseEcrPushEvent } from '../../lambdas/domain/ecr-push-event';
import { digestOf, pushEvent } from '../support/template';

describe('Function: parseEcrPushEvent', () => {
  it('reads a push derived from the real sample', () => {
    const digest = digestOf('p');
    expect(parseEcrPushEvent(pushEvent('apps/payments-api', digest, '1.0'))).toEqual({
      account: '123456789012',
      region: 'us-west-2',
      repository: 'apps/payments-api',
      digest,
      tag: '1.0',
      pushedAt: '2019-11-16T01:54:34Z',
      eventId: '13cde686-328b-6117-af20-0e5566167482',
    });
  });

  it('refuses a bidi-override repository name and escapes it in the message', () => {
    const event = pushEvent('apps/x\u202Eevil', digestOf('p'));
    expect(() => parseEcrPushEvent(event)).toThrow(InvalidEventError);
    try {
      parseEcrPushEvent(event);
    } catch (error) {
      expect((error as Error).message).toContain('\\u202e');
      expect((error as Error).message).not.toContain('\u202E');
    }
  });

  it('refuses a DELETE', () => {
    const event = pushEvent('apps/x', digestOf('p'));
    (event.detail as Record<string, unknown>)['action-type'] = 'DELETE';
    expect(() => parseEcrPushEvent(event)).toThrow('detail.action-type');
  });
});

describe('Function: ecrImageUri', () => {
  it('uses the China partition suffix in cn- regions', () => {
    expect(ecrImageUri('123456789012', 'cn-north-1', 'a/b', 'sha256:x')).toBe('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b@sha256:x');
  });
});
