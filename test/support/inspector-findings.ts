import { Finding } from '@aws-sdk/client-inspector2';
import { createHash } from 'crypto';
import { parseInspectorDate } from '../../lambdas/domain/finding';
import { FINDING_SAMPLE_2024 } from './finding-events';
import { sampleEvent } from './template';

/**
 * A finding as Inspector2 ListFindings returns it, derived from the real 2024 event sample (the event's `detail` is
 * one ListFindings finding): timestamps as Date values, the image, CVE, severity and status replaced.
 */
export function listedFinding(change: { repository: string; digest: string; vulnerabilityId: string; severity?: string; status?: string; at?: string }): Finding {
  const detail = structuredClone(sampleEvent(FINDING_SAMPLE_2024).detail) as Record<string, any>;
  const at = change.at ? new Date(change.at) : new Date(parseInspectorDate(detail.updatedAt)!);
  detail.firstObservedAt = at;
  detail.lastObservedAt = at;
  detail.updatedAt = at;
  detail.severity = change.severity ?? 'HIGH';
  detail.status = change.status ?? 'ACTIVE';
  detail.findingArn = `arn:aws:inspector2:us-east-1:123456789012:finding/${createHash('sha256').update(`${change.digest}${change.vulnerabilityId}`).digest('hex').slice(0, 32)}`;
  detail.awsAccountId = '123456789012';
  detail.title = `${change.vulnerabilityId} - ${detail.packageVulnerabilityDetails.vulnerablePackages[0].name}`;
  detail.packageVulnerabilityDetails.vulnerabilityId = change.vulnerabilityId;
  const resource = detail.resources[0];
  resource.id = `arn:aws:ecr:us-east-1:123456789012:repository/${change.repository}/${change.digest}`;
  resource.region = 'us-east-1';
  Object.assign(resource.details.awsEcrContainerImage, { repositoryName: change.repository, imageHash: change.digest, registry: '123456789012' });
  Object.assign(resource.details.image, { repositoryName: change.repository, imageDigest: change.digest, registry: '123456789012' });
  for (const key of ['pushedAt', 'lastInUseAt']) {
    for (const details of [resource.details.awsEcrContainerImage, resource.details.image]) if (details[key]) details[key] = at;
  }
  return detail as Finding;
}
