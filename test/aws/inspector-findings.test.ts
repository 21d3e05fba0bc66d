import { Finding, Inspector2Client, ListFindingsCommand } from '@aws-sdk/client-inspector2';
import { mockClient } from 'aws-sdk-client-mock';
import { InspectorFindings, normalizeListedFinding } from '../../lambdas/aws/inspector-findings';
import { parseInspectorDate } from '../../lambdas/domain/finding';
import { FINDING_SAMPLE_2024 } from '../support/finding-events';
import { sampleEvent } from '../support/template';

const inspector = mockClient(Inspector2Client);

/** The real event's detail as the SDK returns it from ListFindings: the same finding, timestamps as Date values. */
function listedFinding(change: (f: Record<string, any>) => void = () => undefined): Finding {
  const detail = structuredClone(sampleEvent(FINDING_SAMPLE_2024).detail) as Record<string, any>;
  for (const key of ['firstObservedAt', 'lastObservedAt', 'updatedAt']) detail[key] = new Date(parseInspectorDate(detail[key])!);
  change(detail);
  return detail as Finding;
}

beforeEach(() => inspector.reset());

describe('Function: normalizeListedFinding', () => {
  it('normalizes a listed finding exactly as the event that carries it', () => {
    const finding = normalizeListedFinding(listedFinding());
    const sample = sampleEvent(FINDING_SAMPLE_2024).detail as Record<string, any>;
    expect(finding).toMatchObject({
      vulnerabilityId: sample.packageVulnerabilityDetails.vulnerabilityId,
      repository: sample.resources[0].details.awsEcrContainerImage.repositoryName,
      digest: sample.resources[0].details.awsEcrContainerImage.imageHash,
      status: 'ACTIVE',
      firstObservedAt: parseInspectorDate(sample.firstObservedAt),
    });
  });
});

describe('Class: InspectorFindings', () => {
  describe('Method: all', () => {
    it('lists ACTIVE container-image findings of one repository, 100 a page, following nextToken', async () => {
      inspector.on(ListFindingsCommand).resolvesOnce({ findings: [listedFinding()], nextToken: 'n2' }).resolvesOnce({ findings: [listedFinding((f) => (f.severity = 'CRITICAL'))] });
      const result = await new InspectorFindings(new Inspector2Client({})).all('my-repo', { digest: 'sha256:abc' });
      const calls = inspector.commandCalls(ListFindingsCommand).map((c) => c.args[0].input);
      expect(calls[0]).toEqual({
        maxResults: 100,
        filterCriteria: {
          resourceType: [{ comparison: 'EQUALS', value: 'AWS_ECR_CONTAINER_IMAGE' }],
          findingType: [{ comparison: 'EQUALS', value: 'PACKAGE_VULNERABILITY' }],
          findingStatus: [{ comparison: 'EQUALS', value: 'ACTIVE' }],
          ecrImageRepositoryName: [{ comparison: 'EQUALS', value: 'my-repo' }],
          ecrImageHash: [{ comparison: 'EQUALS', value: 'sha256:abc' }],
        },
      });
      expect(calls[1].nextToken).toBe('n2');
      expect(result.findings.map((f) => f.severity)).toEqual([sampleEvent(FINDING_SAMPLE_2024).detail as { severity: string }].map((d) => d.severity).concat('CRITICAL'));
      expect(result.pages).toBe(2);
    });

    it('refuses malformed findings without failing the page', async () => {
      inspector.on(ListFindingsCommand).resolves({ findings: [listedFinding(), listedFinding((f) => (f.packageVulnerabilityDetails.vulnerabilityId = 'CVE-1\nSubject: x'))] });
      const page = await new InspectorFindings(new Inspector2Client({})).page('my-repo');
      expect(page.findings).toHaveLength(1);
      expect(page.refused).toEqual([expect.objectContaining({ problem: expect.stringContaining('vulnerabilityId') })]);
    });
  });
});
