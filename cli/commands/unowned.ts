import { Tier } from '../../lambdas/domain/lineage';
import { DiscoveryRecord, DiscoveryStore } from '../../lambdas/store/discovery-store';
import { openStore } from '../store-session';

export interface UnownedImage {
  readonly image: string;
  readonly tier: Tier;
  /** Where its place in the lineage came from: an ECR push (with the declaration) or a lineage file/scan/import. */
  readonly learnedFrom: string;
  /** Why a repository tag was not taken as its owner, and the last declaration refused. */
  readonly notes: readonly string[];
}

/** The images without an owner (externals only with `all`: upstream images have none), with where each was learned. */
export async function findUnownedImages(options: { table?: string; stateDir?: string; all?: boolean }): Promise<UnownedImage[]> {
  const store = await openStore({ table: options.table, stateDir: options.stateDir });
  try {
    const graph = await store.lineage.loadGraph();
    const unowned = [...graph.images()].filter((n) => !n.owner && (options.all || n.tier !== Tier.EXTERNAL)).sort((a, b) => a.image.localeCompare(b.image));
    const records = await new DiscoveryStore({ client: store.client, tableName: store.tableName }).getMany(unowned.map((n) => n.image));
    return unowned.map((n) => ({ image: n.image, tier: n.tier, ...describe(records.get(n.image)) }));
  } finally {
    await store.close();
  }
}

function describe(record: DiscoveryRecord | undefined): { learnedFrom: string; notes: string[] } {
  const notes = [...(record?.tagged?.notes ?? [])];
  if (record?.refused) notes.push(`push ${record.refused.digest.slice(0, 19)}… refused (${record.refused.code}) at ${record.refused.at}: ${record.refused.reason}`);
  const learned = record?.learned;
  const learnedFrom = learned
    ? `ECR push ${learned.digest.slice(0, 19)}… at ${learned.at}: ${learned.source} ${learned.baseName ?? learned.parent} (${learned.change})`
    : 'lineage file, Dockerfile scan or import (no push declared its base yet)';
  return { learnedFrom, notes };
}

/** `lineage unowned`: every image nobody owns, so none is silently left without alerts. */
export async function lineageUnownedCommand(options: { table?: string; json?: boolean; all?: boolean }): Promise<string> {
  const images = await findUnownedImages(options);
  if (options.json) return JSON.stringify(images, null, 2);
  if (images.length === 0) return 'every image has an owner';
  const width = Math.max(...images.map((i) => i.image.length));
  const lines = [`${images.length} image(s) without an owner (set one in the lineage file, or tag the ECR repository with owner=<id>):`];
  for (const i of images) {
    lines.push(`  ${i.image.padEnd(width)}  ${i.tier.padEnd(11)}  ${i.learnedFrom}`);
    for (const note of i.notes) lines.push(`  ${' '.repeat(width)}  ${' '.repeat(11)}  ! ${note}`);
  }
  return lines.join('\n');
}
