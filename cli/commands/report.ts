import { readFileSync } from 'fs';
import { z } from 'zod';
import { buildPostureReport, PostureCampaign, PostureFinding, PostureReport, PostureSummary } from '../../lambdas/domain/posture';
import { DriftSubject, findDrift } from '../../lambdas/domain/drift';
import { isInternalImageKey, ImageNode, Tier } from '../../lambdas/domain/lineage';
import { ExceptionStore, FindingStore } from '../../lambdas/store/finding-store';
import { DynamoVersionHistoryStore } from '../../lambdas/store/version-history-store';
import { UsageError } from '../cli-error';
import { renderPostureHtml } from '../report-html';
import { openStore } from '../store-session';

export const ReportFormat = { MD: 'md', JSON: 'json', HTML: 'html' } as const;
export type ReportFormat = (typeof ReportFormat)[keyof typeof ReportFormat];

/** A posture snapshot file (examples/posture.json): what the store would hold, for a report without a deployment. */
const SnapshotSchema = z.object({
  now: z.iso.datetime(),
  lineage: z.array(z.custom<ImageNode>()),
  versions: z.array(z.object({ image: z.string(), digest: z.string(), pushedAt: z.string(), parentDigests: z.record(z.string(), z.string()).optional() })),
  findings: z.array(z.custom<PostureFinding>()),
  exceptions: z.array(z.object({ image: z.string(), vulnerabilityId: z.string(), reason: z.string(), approver: z.string(), expiresAt: z.string() })),
  campaigns: z.array(z.custom<PostureCampaign>()),
});

type Version = z.infer<typeof SnapshotSchema>['versions'][number];

/** The posture from the lineage, versions, findings, exceptions and campaigns. */
function postureOf(now: Date, nodes: readonly ImageNode[], versions: readonly Version[], findings: readonly PostureFinding[], exceptions: z.infer<typeof SnapshotSchema>['exceptions'], campaigns: readonly PostureCampaign[]): PostureReport {
  // Parents named only as parents are the external bases: drawn too, above the images built on them.
  const known = new Set(nodes.map((n) => n.image));
  const externals = [...new Set(nodes.flatMap((n) => n.parents.map((p) => p.image)))].filter((p) => !known.has(p));
  const lineage: ImageNode[] = [...nodes, ...externals.map((image) => ({ image, tier: Tier.EXTERNAL, parents: [] }))];
  const byImage = new Map<string, Version[]>();
  for (const v of versions) byImage.set(v.image, [...(byImage.get(v.image) ?? []), v]);
  const current = (image: string): Version | undefined => (byImage.get(image) ?? []).reduce<Version | undefined>((a, b) => (!a || b.pushedAt > a.pushedAt ? b : a), undefined);
  const subjects: DriftSubject[] = lineage.map((n) => {
    const c = current(n.image);
    return { image: n.image, ...(n.owner && { owner: n.owner }), parents: n.parents.map((p) => p.image), ...(c && { current: c }) };
  });
  const drift = findDrift(subjects.filter((s) => isInternalImageKey(s.image)), (parent) => byImage.get(parent), now);
  const currentDigests = new Map<string, string>();
  for (const n of lineage) {
    const c = current(n.image);
    if (c) currentDigests.set(n.image, c.digest);
  }
  return buildPostureReport({ now, images: lineage, currentDigests, findings, exceptions, drift: drift.drifted, campaigns });
}

export async function reportCommand(options: { format?: string; from?: string; table?: string }): Promise<string> {
  const format = (options.format ?? ReportFormat.MD) as ReportFormat;
  if (!Object.values(ReportFormat).includes(format)) throw new UsageError(`--format must be one of ${Object.values(ReportFormat).join(', ')} (received ${JSON.stringify(options.format)})`);
  const report = options.from ? reportFromSnapshot(options.from) : await reportFromStore(options.table);
  if (format === ReportFormat.JSON) return JSON.stringify(report, null, 2);
  if (format === ReportFormat.HTML) return renderPostureHtml(report);
  return renderPostureMarkdown(report);
}

export function reportFromSnapshot(file: string): PostureReport {
  const parsed = SnapshotSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new UsageError(`${file} is not a posture snapshot: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const s = parsed.data;
  return postureOf(new Date(s.now), s.lineage, s.versions, s.findings, s.exceptions, s.campaigns);
}

async function reportFromStore(table: string | undefined): Promise<PostureReport> {
  const store = await openStore({ table });
  try {
    const graph = await store.lineage.loadGraph();
    const lineage = [...graph.images()];
    const history = new DynamoVersionHistoryStore({ client: store.client, tableName: store.tableName });
    const versions = (await Promise.all(lineage.map((n) => history.versions(n.image, 50)))).flat();
    const findingStore = new FindingStore({ client: store.client, tableName: store.tableName });
    // Findings are keyed by image (a spoke's registry-qualified): each is attributed to the image it was stored under.
    const ofImage = async (image: string): Promise<PostureFinding[]> => (await findingStore.forImage(image)).map((f) => ({ ...f, image }));
    const findings = (await Promise.all(lineage.filter((n) => isInternalImageKey(n.image)).map((n) => ofImage(n.image)))).flat();
    const exceptions = await new ExceptionStore({ client: store.client, tableName: store.tableName }).list();
    const campaigns: PostureCampaign[] = [];
    for (const c of await store.campaigns.list(200)) campaigns.push({ ...c, members: await store.campaigns.members(c.campaignId) });
    return postureOf(new Date(), lineage, versions, findings, exceptions, campaigns);
  } finally {
    await store.close();
  }
}

function summaryLines(s: PostureSummary): string[] {
  const o = s.openFindings;
  const lines = [
    `| open findings | ${o.total} (critical ${o.CRITICAL}, high ${o.HIGH}, medium ${o.MEDIUM}, low ${o.LOW}) |`,
    `| oldest unpatched | ${s.oldestUnpatched ? `${s.oldestUnpatched.severity} ${s.oldestUnpatched.vulnerabilityId} in ${s.oldestUnpatched.image}, ${s.oldestUnpatched.ageDays} days` : 'none'} |`,
    `| drifted images | ${s.drifted.length ? s.drifted.map((d) => `${d.image} (${d.versionsBehind} version${d.versionsBehind === 1 ? '' : 's'}, ${d.daysBehind} days behind)`).join('; ') : 'none'} |`,
    `| active exceptions | ${s.activeExceptions.length ? s.activeExceptions.map((e) => `${e.vulnerabilityId} on ${e.image} until ${e.expiresAt.slice(0, 10)} (${e.daysLeft} days)`).join('; ') : 'none'} |`,
    `| expired exceptions | ${s.expiredExceptions.length} |`,
    `| campaigns | ${s.campaigns.total} (${s.campaigns.completed} completed, ${s.campaigns.failed} failed, ${s.campaigns.running} running) |`,
    `| mean time to remediate | ${s.meanTimeToRemediateDays === null ? 'n/a' : `${s.meanTimeToRemediateDays} days over ${s.remediated} finding(s)`} |`,
  ];
  return ['| | |', '|---|---|', ...lines];
}

export function renderPostureMarkdown(report: PostureReport): string {
  const out = [`# Patchline posture — ${report.generatedAt.slice(0, 10)}`, '', '## Organization', '', ...summaryLines(report.organization)];
  for (const owner of report.owners) out.push('', `## ${owner.owner} (${owner.images} image${owner.images === 1 ? '' : 's'})`, '', ...summaryLines(owner));
  if (report.untracked.openFindings > 0) out.push('', `Untracked: ${report.untracked.openFindings} open finding(s) on ${report.untracked.repositories.join(', ')} (not in the lineage: nobody is alerted).`);
  return out.join('\n');
}

