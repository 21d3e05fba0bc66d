import { createHash } from 'crypto';
import { sampleEvent } from './template';

/** The Inspector2 finding sample of the ECR user guide (2021 format, "…EXAMPLE" placeholder digests). */
export const FINDING_SAMPLE_2021 = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json';
/** The Inspector user guide sample (2024 format, both detail objects, `{{FINDING_ID}}`). */
export const FINDING_SAMPLE_2024 = 'docs.aws.amazon.com__inspector__latest__user__eventbridge-integration__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json';
export const SCAN_SAMPLE_LAMBDA_GO = 'aws-lambda-go__events__testdata__ecr-image-scan-event.json';
export const SCAN_SAMPLE_DOCS = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-scan-basic.json';

export const SEED_CVE = 'CVE-2023-38545';
export const UBI_MIRROR = 'registry.access.redhat.com/ubi9/python-311';

export function digestFor(seed: string): string {
  return `sha256:${createHash('sha256').update(seed).digest('hex')}`;
}

export interface FindingChange {
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
  readonly vulnerabilityId?: string;
  readonly severity?: string;
  readonly status?: string;
  /** `0:7.76.1-26.el9_3.2`; null removes the fixed version (no fix). */
  readonly fixedInVersion?: string | null;
  readonly packageName?: string;
  readonly version?: string;
  readonly release?: string;
  /** ISO time used for firstObservedAt/lastObservedAt/updatedAt. */
  readonly at?: string;
}

/**
 * A finding derived from the real 2021 sample (structuredClone), its placeholder digests replaced: the seed CVE
 * (curl 7.76.1-26.el9) on `repository`, by default.
 */
export function findingEvent(change: FindingChange): Record<string, any> {
  const event = structuredClone(sampleEvent(FINDING_SAMPLE_2021)) as Record<string, any>;
  const digest = change.digest ?? digestFor(`${change.repository}:${change.tag ?? 'latest'}`);
  const vulnerabilityId = change.vulnerabilityId ?? SEED_CVE;
  const arn = `arn:aws:ecr:us-east-2:123456789012:repository/${change.repository}/${digest}`;
  event.resources = [arn];
  const detail = event.detail;
  const resource = detail.resources[0];
  resource.id = arn;
  Object.assign(resource.details.awsEcrContainerImage, { repositoryName: change.repository, imageHash: digest, imageTags: [change.tag ?? 'latest'] });
  detail.findingArn = `arn:aws:inspector2:us-east-2:123456789012:finding/${createHash('sha256').update(`${digest}${vulnerabilityId}`).digest('hex').slice(0, 32)}`;
  detail.severity = change.severity ?? 'HIGH';
  detail.status = change.status ?? 'ACTIVE';
  detail.title = `${vulnerabilityId} - ${change.packageName ?? 'curl'}`;
  const pkg = detail.packageVulnerabilityDetails.vulnerablePackages[0];
  Object.assign(pkg, { name: change.packageName ?? 'curl', version: change.version ?? '7.76.1', release: change.release ?? '26.el9' });
  if (change.fixedInVersion === null) delete pkg.fixedInVersion;
  else pkg.fixedInVersion = change.fixedInVersion ?? '0:7.76.1-26.el9_3.2';
  detail.packageVulnerabilityDetails.vulnerabilityId = vulnerabilityId;
  if (change.at) {
    detail.firstObservedAt = change.at;
    detail.lastObservedAt = change.at;
    detail.updatedAt = change.at;
    event.time = change.at;
  }
  return event;
}

/** The same finding (findingEvent) as the Inspector2 of `where` reports it: envelope, ARNs and registry moved there. */
export function findingEventIn(where: { account: string; region: string }, change: FindingChange): Record<string, any> {
  const event = findingEvent(change);
  const rewrite = (arn: string): string => arn.replace(/:us-east-2:123456789012:/, `:${where.region}:${where.account}:`);
  event.account = where.account;
  event.region = where.region;
  event.resources = event.resources.map(rewrite);
  event.detail.awsAccountId = where.account;
  event.detail.findingArn = rewrite(event.detail.findingArn);
  for (const resource of event.detail.resources) {
    resource.id = rewrite(resource.id);
    if (resource.region) resource.region = where.region;
    if (resource.details.awsEcrContainerImage.registry) resource.details.awsEcrContainerImage.registry = where.account;
  }
  return event;
}
