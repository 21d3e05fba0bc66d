import { readFileSync } from 'fs';
import { join } from 'path';
import { ENDED_BUILD_STATUSES, isBuildArn, remoteBuildSessionName, RemoteBuildStatus } from '../../lambdas/domain/remote-build';

const EVENTS = join(__dirname, '../../../shared/data/events');
const sample = (name: string): { detail: { 'build-id': string; 'build-status': string } } => JSON.parse(readFileSync(join(EVENTS, name), 'utf8'));

describe('Function: isBuildArn', () => {
  it('accepts the build-id of real CodeBuild state change events', () => {
    for (const name of ['aws-lambda-go__events__testdata__codebuild-state-change.json', 'rgfindl-functionci@bd27f52f__app__test__index.js__codebuild-build-state-change-FAILED.json']) {
      expect(isBuildArn(sample(name).detail['build-id'])).toBe(true);
    }
  });

  it('refuses a bare build id and an ARN of another service', () => {
    expect(isBuildArn('my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX')).toBe(false);
    expect(isBuildArn('arn:aws:codebuild:us-west-2:123456789012:project/my-sample-project')).toBe(false);
    expect(isBuildArn('arn:aws:states:us-west-2:123456789012:build/my-sample-project:1')).toBe(false);
  });
});

describe('Function: remoteBuildSessionName', () => {
  it('names the session after the execution, within STS\u2019s 64 characters', () => {
    expect(remoteBuildSessionName('apps-orders-api-0123')).toBe('patchline-apps-orders-api-0123');
    const long = remoteBuildSessionName('x'.repeat(80));
    expect(long).toHaveLength(64);
    expect(long).toMatch(/^[\w+=,.@-]{2,64}$/);
  });
});

describe('Constant: ENDED_BUILD_STATUSES', () => {
  it('covers every status but IN_PROGRESS, including the real samples\u2019 ends', () => {
    expect([...ENDED_BUILD_STATUSES].sort()).toEqual(Object.values(RemoteBuildStatus).filter((s) => s !== RemoteBuildStatus.IN_PROGRESS).sort());
    expect(ENDED_BUILD_STATUSES).toContain(sample('rgfindl-functionci@bd27f52f__app__test__index.js__codebuild-build-state-change-FAILED.json').detail['build-status']);
  });
});
