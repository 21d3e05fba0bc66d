import { readFileSync } from 'fs';
import { join } from 'path';
import { InvalidEventError } from '../../lambdas/domain/ecr-push-event';
import { parseInspectorScanEvent } from '../../lambdas/domain/inspector-scan-event';

const EVENTS = join(__dirname, '../../../shared/data/events');
const INSPECTOR_DOCS = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';
const ECR_DOCS = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-scan-INITIAL_SCAN_COMPLETE-ecr.json';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const sample = (name: string): Record<string, any> => structuredClone(JSON.parse(readFileSync(join(EVENTS, name), 'utf8')));

describe('Function: parseInspectorScanEvent', () => {
  it('parses the Inspector documentation sample: repository from its ARN, digest, tags, time and total', () => {
    const raw = sample(INSPECTOR_DOCS);
    expect(parseInspectorScanEvent(raw)).toEqual({
      repository: raw.detail['repository-name'].split(':repository/')[1],
      digest: raw.detail['image-digest'],
      tags: raw.detail['image-tags'],
      scannedAt: raw.time,
      totalFindings: raw.detail['finding-severity-counts'].TOTAL,
    });
  });

  it('takes a bare repository name, and no severity counts', () => {
    const raw = sample(INSPECTOR_DOCS);
    raw.detail['repository-name'] = 'apps/payments-api';
    delete raw.detail['finding-severity-counts'];
    const scan = parseInspectorScanEvent(raw);
    expect(scan.repository).toBe('apps/payments-api');
    expect(scan).not.toHaveProperty('totalFindings');
  });

  it('defaults the tags of an untagged image to none', () => {
    const raw = sample(INSPECTOR_DOCS);
    delete raw.detail['image-tags'];
    expect(parseInspectorScanEvent(raw).tags).toEqual([]);
  });

  it('refuses the ECR guide sample: its placeholder digest is not a sha256 digest', () => {
    expect(() => parseInspectorScanEvent(sample(ECR_DOCS))).toThrow(InvalidEventError);
    expect(() => parseInspectorScanEvent(sample(ECR_DOCS))).toThrow(/image-digest/);
  });

  it('refuses another event type (a finding) and another source', () => {
    const finding = sample(INSPECTOR_DOCS);
    finding['detail-type'] = 'Inspector2 Finding';
    expect(() => parseInspectorScanEvent(finding)).toThrow(InvalidEventError);
    const spoofed = sample(INSPECTOR_DOCS);
    spoofed.source = 'custom.inspector2';
    expect(() => parseInspectorScanEvent(spoofed)).toThrow(/source/);
  });

  it('refuses a scan status other than INITIAL_SCAN_COMPLETE', () => {
    const raw = sample(INSPECTOR_DOCS);
    raw.detail['scan-status'] = 'SCAN_FAILED';
    expect(() => parseInspectorScanEvent(raw)).toThrow(/scan-status/);
  });

  it('refuses a repository ARN whose name is not a repository name', () => {
    const raw = sample(INSPECTOR_DOCS);
    raw.detail['repository-name'] = 'arn:aws:ecr:us-east-1:111122223333:repository/UPPER/../case';
    expect(() => parseInspectorScanEvent(raw)).toThrow(/repository-name/);
  });

  it('refuses an account id that is not 12 digits, and a negative finding count', () => {
    const account = sample(INSPECTOR_DOCS);
    account.account = '1234';
    expect(() => parseInspectorScanEvent(account)).toThrow(/account/);
    const counts = sample(INSPECTOR_DOCS);
    counts.detail['finding-severity-counts'].TOTAL = -1;
    expect(() => parseInspectorScanEvent(counts)).toThrow(/finding-severity-counts/);
  });

  it('refuses something that is not an event', () => {
    for (const raw of [null, 'scan', 42, []]) expect(() => parseInspectorScanEvent(raw)).toThrow(InvalidEventError);
  });
});
