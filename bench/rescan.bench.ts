// A scheduled rescan over 5,000 images (250 repositories of 20 images) against the ECR and Inspector2 stand-ins of
// cli/local/local-scanners.ts, which page as AWS does (DescribeRepositories/DescribeImages 1,000, ListFindings 100),
// and dynalite through the real AWS SDK. The handler steps run in the order the registry-rescan state machine runs
// them; its state transitions are counted from the synthesized definition's shape. Seeded drift: 1% of the stored
// findings were missed (never stored), 1% were closed by Inspector2 since, and the base moved upstream.
import { readFileSync } from 'fs';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { createPatchlineTable, startDynamoDbEmulator } from '../cli/local/dynamodb-emulator';
import { LocalScanners } from '../cli/local/local-scanners';
import { normalizeListedFinding } from '../lambdas/aws/inspector-findings';
import { parseConfig } from '../lambdas/domain/config';
import { ImageNode, Tier } from '../lambdas/domain/lineage';
import { HandlerDependencies, tableStores } from '../lambdas/handlers/dependencies';
import { findingReceivedDependencies } from '../lambdas/handlers/finding-received';
import { DigestResult, makeRegistryRescanHandler, RepositoryPage, RepositoryRescan } from '../lambdas/handlers/registry-rescan';
import { makeUpstreamWatchHandler, UpstreamWatchResult } from '../lambdas/handlers/upstream-watch';
import { listedFinding } from '../test/support/inspector-findings';
import { digestOf } from '../test/support/template';
import { reportBenchmark } from './report';

const REPOSITORIES = 250;
const IMAGES_PER_REPOSITORY = 20;
const FINDINGS_PER_CURRENT_IMAGE = 8;
const FINDINGS_PER_OLD_IMAGE = 1;
const BASE = 'registry.access.redhat.com/ubi9/python-311:1-34';
const NOW = new Date('2025-06-30T06:00:00Z');
/** Step Functions Standard: USD per state transition (us-east-1). */
const PRICE_PER_TRANSITION = 0.000025;

async function main(): Promise<void> {
  const config = parseConfig({ ...JSON.parse(readFileSync(join(__dirname, '..', 'patchline.config.json'), 'utf8')), repositories: ['team/*'] });
  const dynamo = await startDynamoDbEmulator();
  const tableName = 'patchline-bench';
  await createPatchlineTable(dynamo.client, tableName);
  const client = dynamo.client;
  const deps: HandlerDependencies = {
    ...tableStores({ client, tableName, concurrency: 10 }),
    taskTokens: { succeed: async () => true, fail: async () => true },
    defaultBuildSeconds: 600,
    now: () => NOW,
    ...findingReceivedDependencies({ client, tableName, config }),
  };
  const scanners = new LocalScanners({ client, tableName, config, now: () => NOW });
  const oldBase = digestOf('base-old');
  scanners.registry = { resolveDigest: async () => ({ digest: digestOf('base-new') }) };

  // Lineage: the external base → 10 enterprise images → 240 application images; one repository per image.
  const repos = Array.from({ length: REPOSITORIES }, (_, i) => `team/image-${String(i).padStart(3, '0')}`);
  const lineage: ImageNode[] = repos.map((image, i) => ({
    image,
    tier: i < 10 ? Tier.ENTERPRISE : Tier.APPLICATION,
    owner: ['platform-team', 'payments-team', 'orders-team', 'build-tools'][i % 4],
    parents: [{ image: i < 10 ? BASE : repos[i % 10], role: 'runtime' }],
    build: { project: `apps-${i}` },
  }));
  await deps.lineage.putImages(lineage);
  await deps.lineage.putVersion({ image: BASE, digest: oldBase, tags: ['1-34'], pushedAt: '2025-01-01T00:00:00Z' });
  let seededFindings = 0;
  let stored = 0;
  let listed = 0;
  for (const [r, repository] of repos.entries()) {
    for (let i = 0; i < IMAGES_PER_REPOSITORY; i++) {
      const digest = digestOf(`${repository}:${i}`);
      const current = i === IMAGES_PER_REPOSITORY - 1;
      scanners.backend.addImage(repository, digest, { tags: current ? ['latest'] : [], pushedAt: new Date(Date.parse('2025-01-01T00:00:00Z') + i * 86_400_000).toISOString() });
      if (current) {
        const parent = lineage[r].parents[0].image;
        await deps.lineage.putVersion({ image: repository, digest, tags: ['latest'], pushedAt: '2025-01-20T00:00:00Z', parentDigests: { [parent]: parent === BASE ? oldBase : digestOf(`${parent}:${IMAGES_PER_REPOSITORY - 1}`) } });
      }
      const count = current ? FINDINGS_PER_CURRENT_IMAGE : FINDINGS_PER_OLD_IMAGE;
      for (let c = 0; c < count; c++) {
        // Severities below the HIGH threshold mostly, as in real scans: only a few findings call for action.
        const finding = listedFinding({ repository, digest, vulnerabilityId: `CVE-2025-${String(1000 + c).padStart(4, '0')}`, severity: c === 0 ? 'HIGH' : 'MEDIUM', at: '2025-05-01T00:00:00Z' });
        seededFindings += 1;
        const n = seededFindings % 100;
        if (n !== 0) {
          const normalized = normalizeListedFinding(finding);
          await deps.findings!.record(normalized.repository, normalized);
          stored += 1;
        }
        // 1% closed by Inspector2 since they were stored: not listed any more.
        if (n !== 1) {
          scanners.backend.putFinding(finding);
          listed += 1;
        }
      }
    }
  }
  const seedRequests = dynamo.requestCount();

  const rescan = makeRegistryRescanHandler(deps, scanners);
  const watch = makeUpstreamWatchHandler(deps, scanners);
  const started = performance.now();
  const per = { missed: 0, closed: 0, reopened: 0, changed: 0, alerts: 0, starts: 0, drifted: 0, images: 0 };
  let pages = 0;
  let transitions = 1; // Begin
  let token = '';
  do {
    const page = (await rescan({ action: 'listRepositories', nextToken: token })) as RepositoryPage;
    pages += 1;
    transitions += 3; // ListRepositories, RescanRepositories (Map), MorePages
    for (const repository of page.repositories) {
      const result = (await rescan({ action: 'rescanRepository', repository })) as RepositoryRescan;
      per.images += result.images;
      per.missed += result.missed;
      per.closed += result.closed;
      per.reopened += result.reopened;
      per.changed += result.changed;
      per.alerts += result.alerts.length;
      per.starts += result.starts.length;
      if (result.drift) per.drifted += 1;
      // RescanRepository, PublishRepositoryAlerts (+1 per alert), StartFindingRebuilds (+1 per start)
      transitions += 3 + result.alerts.length + result.starts.length;
    }
    token = page.nextToken ?? '';
    if (token) transitions += 1; // NextPage
  } while (token);
  const upstream = (await watch({})) as UpstreamWatchResult;
  const digest = (await rescan({ action: 'digest' })) as DigestResult;
  transitions += 2 + upstream.starts.length + 2 + digest.alerts.length + 1; // WatchUpstream, StartUpstreamRebuilds, BuildDigests, PublishDigests, Rescanned
  const wallMs = performance.now() - started;
  const apiCalls = { ...scanners.backend.calls };
  const dynamoRequests = dynamo.requestCount() - seedRequests;
  await dynamo.stop();

  const rows = [
    { metric: 'images', value: per.images },
    { metric: 'repositories (pages)', value: `${REPOSITORIES} (${pages})` },
    { metric: 'findings listed / stored before', value: `${listed} / ${stored}` },
    { metric: 'missed picked up / closed / reopened', value: `${per.missed} / ${per.closed} / ${per.reopened}` },
    { metric: 'alerts (per repository) / rebuild starts', value: `${per.alerts} / ${per.starts}` },
    { metric: 'upstream moved / rebuilds started', value: `${upstream.moved.length} / ${upstream.starts.length}` },
    { metric: 'digest alerts / drifted images', value: `${digest.alerts.length} / ${digest.drifted.length}` },
    ...Object.entries(apiCalls).map(([name, count]) => ({ metric: `API ${name}`, value: count })),
    { metric: 'DynamoDB requests', value: dynamoRequests },
    { metric: 'wall time (s)', value: Number((wallMs / 1000).toFixed(2)) },
    { metric: 'state transitions', value: transitions },
    { metric: 'Step Functions cost (USD)', value: Number((transitions * PRICE_PER_TRANSITION).toFixed(4)) },
  ];
  reportBenchmark('rescan', rows, {
    images: per.images,
    repositories: REPOSITORIES,
    pages,
    findingsListed: listed,
    findingsStoredBefore: stored,
    reconciliation: { missed: per.missed, closed: per.closed, reopened: per.reopened, changed: per.changed },
    alerts: per.alerts,
    rebuildStarts: per.starts + upstream.starts.length,
    upstream: { moved: upstream.moved.length, starts: upstream.starts.length },
    digestAlerts: digest.alerts.length,
    drifted: digest.drifted.length,
    apiCalls,
    dynamoRequests,
    wallMs: Math.round(wallMs),
    stateTransitions: transitions,
    stepFunctionsCostUsd: Number((transitions * PRICE_PER_TRANSITION).toFixed(4)),
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
