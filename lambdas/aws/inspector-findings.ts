import { Finding, Inspector2Client, ListFindingsCommand } from '@aws-sdk/client-inspector2';
import { createHash } from 'node:crypto';
import { InvalidFindingEventError, NormalizedFinding, parseInspectorFindingEvent } from '../domain/finding';

/**
 * A thin Inspector2 client for the rescan: the ACTIVE package-vulnerability findings of one ECR repository (or one
 * image digest), page by page. Each finding goes through the same strict parser as the EventBridge event, whose
 * `detail` is one ListFindings finding: what the rescan stores is checked exactly like what an event brings.
 */

/** Inspector2's largest ListFindings page. */
export const LIST_FINDINGS_PAGE_SIZE = 100;

export interface FindingsPage {
  readonly findings: readonly NormalizedFinding[];
  /** Each finding as the EventBridge event that would carry it, by finding ARN: finding-received takes it as is. */
  readonly events: ReadonlyMap<string, unknown>;
  /** Findings the parser refused (not container images, malformed): counted, never stored. */
  readonly refused: ReadonlyArray<{ readonly findingArn: string; readonly problem: string }>;
  readonly nextToken?: string;
}

const FINDING_ARN_REGION = /^arn:[^:]+:inspector2:([a-z0-9-]+):/;

function isoDates(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(isoDates);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isoDates(v)]));
  return value;
}

/** A ListFindings finding wrapped as the EventBridge "Inspector2 Finding" event that carries it. */
export function listedFindingEvent(finding: Finding): Record<string, unknown> {
  const detail = isoDates(finding) as Record<string, unknown>;
  const region = finding.resources?.[0]?.region ?? FINDING_ARN_REGION.exec(finding.findingArn ?? '')?.[1] ?? '';
  return {
    version: '0',
    id: createHash('sha256').update(String(finding.findingArn)).digest('hex').slice(0, 32),
    'detail-type': 'Inspector2 Finding',
    source: 'aws.inspector2',
    account: finding.awsAccountId,
    time: detail.updatedAt ?? detail.lastObservedAt,
    region,
    resources: (finding.resources ?? []).map((r) => r.id),
    detail,
  };
}

/** A ListFindings finding, normalized by the same strict parser as its event. */
export function normalizeListedFinding(finding: Finding): NormalizedFinding {
  return parseInspectorFindingEvent(listedFindingEvent(finding));
}

export class InspectorFindings {
  public constructor(private readonly client: Pick<Inspector2Client, 'send'>) {}

  /** One page of the ACTIVE package-vulnerability findings of `repository` (of `digest` only, when given). */
  public async page(repository: string, options: { readonly digest?: string; readonly nextToken?: string } = {}): Promise<FindingsPage> {
    const out = await this.client.send(
      new ListFindingsCommand({
        maxResults: LIST_FINDINGS_PAGE_SIZE,
        filterCriteria: {
          resourceType: [{ comparison: 'EQUALS', value: 'AWS_ECR_CONTAINER_IMAGE' }],
          findingType: [{ comparison: 'EQUALS', value: 'PACKAGE_VULNERABILITY' }],
          findingStatus: [{ comparison: 'EQUALS', value: 'ACTIVE' }],
          ecrImageRepositoryName: [{ comparison: 'EQUALS', value: repository }],
          ...(options.digest && { ecrImageHash: [{ comparison: 'EQUALS', value: options.digest }] }),
        },
        ...(options.nextToken && { nextToken: options.nextToken }),
      }),
    );
    const findings: NormalizedFinding[] = [];
    const events = new Map<string, unknown>();
    const refused: Array<{ findingArn: string; problem: string }> = [];
    for (const finding of out.findings ?? []) {
      try {
        const event = listedFindingEvent(finding);
        const normalized = parseInspectorFindingEvent(event);
        findings.push(normalized);
        events.set(normalized.findingArn, event);
      } catch (error) {
        if (!(error instanceof InvalidFindingEventError)) throw error;
        refused.push({ findingArn: String(finding.findingArn ?? '?'), problem: error.message });
      }
    }
    return { findings, events, refused, ...(out.nextToken && { nextToken: out.nextToken }) };
  }

  /** Every page. */
  public async all(repository: string, options: { readonly digest?: string } = {}): Promise<{ findings: NormalizedFinding[]; events: Map<string, unknown>; refused: number; pages: number }> {
    const findings: NormalizedFinding[] = [];
    const events = new Map<string, unknown>();
    let refused = 0;
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await this.page(repository, { ...options, ...(token && { nextToken: token }) });
      pages += 1;
      findings.push(...page.findings);
      for (const [arn, event] of page.events) events.set(arn, event);
      refused += page.refused.length;
      token = page.nextToken;
    } while (token);
    return { findings, events, refused, pages };
  }
}
