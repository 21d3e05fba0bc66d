// Findings against dynalite with the real AWS SDK: (1) normalized findings stored per second (FindingStore.record,
// one at a time and 16 in flight); (2) a burst of 10,000 findings over 1,000 images through the real finding-received
// handler (parse, store, origin, policy, campaigns, alert dedup): alerts sent must be exactly what the policy allows.
import { readFileSync } from 'fs';
import { join } from 'path';
import { performance } from 'perf_hooks';
import { createHash } from 'crypto';
import { createPatchlineTable, startDynamoDbEmulator } from '../cli/local/dynamodb-emulator';
import { parseConfig } from '../lambdas/domain/config';
import { NormalizedFinding, parseInspectorFindingEvent } from '../lambdas/domain/finding';
import { ImageNode } from '../lambdas/domain/lineage';
import { HandlerDependencies, tableStores } from '../lambdas/handlers/dependencies';
import { findingReceivedDependencies, makeFindingReceivedHandler } from '../lambdas/handlers/finding-received';
import { FindingStore } from '../lambdas/store/finding-store';
import { reportBenchmark } from './report';

const SAMPLE = join(__dirname, '../../shared/data/events/awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__image-scanning-enhanced.md__inspector2-finding-PACKAGE_VULNERABILITY-ecr.json');
const CONFIG = join(__dirname, '..', 'patchline.config.json');
const STORE_COUNT = 2_000;
const ENTERPRISE = 20;
const APPS_PER_ENTERPRISE = 48;
const COTS = 20;
const CVES = 10;
const CONCURRENCY = 16;

/** CVE i: 0-4 HIGH with a fix (acted upon), 5-7 MEDIUM (below the HIGH threshold), 8-9 HIGH without a fix. */
function cveProfile(i: number): { id: string; severity: string; fixed: boolean; acts: boolean } {
  const id = `CVE-2024-${String(10_000 + i)}`;
  if (i < 5) return { id, severity: 'HIGH', fixed: true, acts: true };
  if (i < 8) return { id, severity: 'MEDIUM', fixed: true, acts: false };
  return { id, severity: 'HIGH', fixed: false, acts: false };
}

const sample = JSON.parse(readFileSync(SAMPLE, 'utf8')) as Record<string, any>;

function event(repository: string, cve: number, at = '2024-02-01T00:00:00Z'): Record<string, any> {
  const profile = cveProfile(cve);
  const e = structuredClone(sample);
  const digest = `sha256:${createHash('sha256').update(repository).digest('hex')}`;
  const arn = `arn:aws:ecr:us-east-2:123456789012:repository/${repository}/${digest}`;
  e.resources = [arn];
  e.time = at;
  const d = e.detail;
  Object.assign(d, { severity: profile.severity, firstObservedAt: at, lastObservedAt: at, updatedAt: at });
  d.findingArn = `arn:aws:inspector2:us-east-2:123456789012:finding/${createHash('sha256').update(`${digest}${cve}`).digest('hex').slice(0, 32)}`;
  d.resources[0].id = arn;
  Object.assign(d.resources[0].details.awsEcrContainerImage, { repositoryName: repository, imageHash: digest, imageTags: ['latest'] });
  d.packageVulnerabilityDetails.vulnerabilityId = profile.id;
  const pkg = d.packageVulnerabilityDetails.vulnerablePackages[0];
  if (profile.fixed) pkg.fixedInVersion = '0:1.4.3-12.amzn2.3';
  else delete pkg.fixedInVersion;
  return e;
}

function lineage(): ImageNode[] {
  const images: ImageNode[] = [];
  for (let e = 0; e < ENTERPRISE; e++) {
    const enterprise = `enterprise/base-${e}`;
    images.push({ image: enterprise, tier: 'enterprise', owner: 'platform-team', parents: [{ image: `registry.example.com/os/base-${e % 4}:1`, role: 'runtime' }], build: { project: `enterprise-base-${e}` } });
    for (let a = 0; a < APPS_PER_ENTERPRISE; a++) {
      images.push({ image: `apps/app-${e}-${a}`, tier: 'application', owner: 'payments-team', parents: [{ image: enterprise, role: 'runtime' }], build: { project: `apps-app-${e}-${a}` } });
    }
  }
  for (let c = 0; c < COTS; c++) images.push({ image: `vendor/agent-${c}`, tier: 'cots', owner: 'observability-vendor', parents: [{ image: 'registry.example.com/os/base-0:1', role: 'runtime' }] });
  return images;
}

async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

async function main(): Promise<void> {
  const emulator = await startDynamoDbEmulator();
  const client = emulator.client;
  const config = parseConfig(JSON.parse(readFileSync(CONFIG, 'utf8')));
  try {
    // (1) Store throughput of normalized findings.
    const normalized: NormalizedFinding[] = Array.from({ length: STORE_COUNT }, (_, i) => parseInspectorFindingEvent(event(`apps/store-${i % 200}`, i % CVES)));
    const storeRows: Array<Record<string, string | number>> = [];
    for (const [mode, limit] of [['sequential', 1], [`${CONCURRENCY} in flight`, CONCURRENCY]] as const) {
      const tableName = `store-${limit}`;
      await createPatchlineTable(client, tableName);
      const store = new FindingStore({ client, tableName });
      const before = emulator.requestCount();
      const t0 = performance.now();
      await inParallel(normalized, limit, async (f) => void (await store.record(f.repository, f)));
      const ms = performance.now() - t0;
      storeRows.push({ scenario: `store ${STORE_COUNT} findings, ${mode}`, ms: Math.round(ms), perSecond: Math.round((STORE_COUNT / ms) * 1000), requestsPerFinding: (emulator.requestCount() - before) / STORE_COUNT });
    }

    // (2) A burst of findings through the real handler.
    const tableName = 'burst';
    await createPatchlineTable(client, tableName);
    const deps: HandlerDependencies = {
      ...tableStores({ client, tableName, concurrency: 10 }),
      taskTokens: { succeed: async () => true, fail: async () => true },
      defaultBuildSeconds: 600,
      now: () => new Date('2024-03-01T00:00:00Z'),
      ...findingReceivedDependencies({ client, tableName, config }),
    };
    const images = lineage();
    await deps.lineage.putImages(images);
    const internal = images.filter((i) => i.tier !== 'external');
    const burst = internal.flatMap((image) => Array.from({ length: CVES }, (_, cve) => event(image.image, cve)));
    const handle = makeFindingReceivedHandler(deps);
    let alerts = 0;
    let suppressed = 0;
    const campaigns = new Set<string>();
    const starts = new Set<string>();
    const before = emulator.requestCount();
    const t0 = performance.now();
    await inParallel(burst, CONCURRENCY, async (e) => {
      const result = await handle(e);
      alerts += result.alerts.length;
      suppressed += result.suppressedAlerts;
      if (result.campaignId) campaigns.add(result.campaignId);
      for (const s of result.starts) starts.add(s.name);
    });
    const ms = performance.now() - t0;
    // What the policy allows: one alert per (image where the fix lands, acted-upon CVE, kind): each enterprise image
    // (upstream origin) and each COTS image (vendor), for each CVE that is HIGH with a fix.
    const actedCves = Array.from({ length: CVES }, (_, i) => cveProfile(i)).filter((p) => p.acts).length;
    const allowed = actedCves * (ENTERPRISE + COTS);
    const burstRow = {
      scenario: `burst ${burst.length} findings over ${internal.length} images`,
      ms: Math.round(ms),
      perSecond: Math.round((burst.length / ms) * 1000),
      requestsPerFinding: (emulator.requestCount() - before) / burst.length,
      alertsSent: alerts,
      alertsAllowed: allowed,
      alertsSuppressed: suppressed,
      campaigns: campaigns.size,
      rebuildStarts: starts.size,
    };
    reportBenchmark('findings', [...storeRows, { scenario: burstRow.scenario, ms: burstRow.ms, perSecond: burstRow.perSecond, requestsPerFinding: burstRow.requestsPerFinding }], {
      store: storeRows,
      burst: burstRow,
      setup: { enterprise: ENTERPRISE, appsPerEnterprise: APPS_PER_ENTERPRISE, cots: COTS, cves: CVES, concurrency: CONCURRENCY, policy: 'threshold HIGH, fix required' },
    });
    console.log(`alerts sent ${alerts} (allowed ${allowed}), suppressed by dedup ${suppressed}, campaigns ${campaigns.size}, rebuild starts ${starts.size}`);
    if (alerts !== allowed) throw new Error(`dedup failed: ${alerts} alerts sent, the policy allows ${allowed}`);
    if (campaigns.size !== ENTERPRISE) throw new Error(`expected one campaign per enterprise image (${ENTERPRISE}), got ${campaigns.size}`);
  } finally {
    await emulator.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
