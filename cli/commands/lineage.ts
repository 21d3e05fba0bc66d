import { SingleBar, Presets } from 'cli-progress';
import { ImageNode, LineageGraph } from '../../lambdas/domain/lineage';
import { DescendantRecord } from '../../lambdas/store/lineage-store';
import { UsageError } from '../cli-error';
import { loadConfig, loadLineage } from '../input-files';
import { scanDockerfiles } from '../lineage-scan';
import { openStore } from '../store-session';

/**
 * `lineage import FILE`: validates the whole file first, then stores it in batches with a progress bar. With `config`
 * naming an organization, hub images named by their qualified key are stored under their bare key.
 */
export async function lineageImportCommand(file: string, options: { table?: string; progress?: boolean; config?: string }): Promise<string> {
  const nodes = loadLineage(file, options.config === undefined ? undefined : loadConfig(options.config));
  LineageGraph.fromImages(nodes); // refuses cycles and duplicates before anything is written
  const store = await openStore({ table: options.table });
  const bar = options.progress !== false && process.stderr.isTTY && nodes.length > 200 ? new SingleBar({ format: 'importing [{bar}] {value}/{total} writes' }, Presets.shades_classic) : undefined;
  try {
    let started = false;
    const result = await store.lineage.putImages(nodes, {
      onProgress: (done, total) => {
        if (!bar) return;
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(done);
      },
    });
    bar?.stop();
    return `imported ${nodes.length} image(s) from ${file} into the ${store.where}: ${result.imagesWritten} written, ${result.externalsAdded.length} external parent(s) added, ${result.closureItemsPut} lineage index item(s) put, ${result.closureItemsDeleted} deleted, ${result.writeRequests} write request(s)`;
  } finally {
    bar?.stop();
    await store.close();
  }
}

/** `lineage show IMAGE`: the images above it and the tree below it, with tiers and owners. */
export async function lineageShowCommand(image: string, options: { table?: string; lineage?: string }): Promise<string> {
  let node: ImageNode | undefined;
  let above: DescendantRecord[];
  let below: DescendantRecord[];
  if (options.lineage) {
    const graph = LineageGraph.fromImages(loadLineage(options.lineage));
    node = graph.get(image);
    const record = (i: string, depth: number): DescendantRecord => ({ ...graph.require(i), depth });
    above = [...graph.ancestors(image)].map((i) => record(i, 0));
    below = [...graph.descendants(image)].map((i) => record(i, 0));
  } else {
    const store = await openStore({ table: options.table });
    try {
      node = await store.lineage.getImage(image);
      above = node ? await store.lineage.ancestors(image) : [];
      below = node ? await store.lineage.descendants(image) : [];
    } finally {
      await store.close();
    }
  }
  if (!node) throw new UsageError(`image ${JSON.stringify(image)} is not in the lineage (import one with 'patchline lineage import FILE')`);
  const byImage = new Map([...above, ...below, { ...node, depth: 0 }].map((r) => [r.image, r as ImageNode]));
  const label = (n: ImageNode): string => `${n.image}  [${n.tier}${n.owner ? `, owner ${n.owner}` : ', unowned'}${n.build ? `, build ${n.build.project}` : ''}]`;
  const lines: string[] = ['above:'];
  const chain = (i: string, indent: string): void => {
    for (const p of byImage.get(i)?.parents ?? []) {
      const parent = byImage.get(p.image);
      lines.push(`${indent}↑ ${parent ? label(parent) : p.image}${p.role === 'build' ? ' (build stage)' : ''}`);
      chain(p.image, `${indent}  `);
    }
  };
  chain(image, '  ');
  if (lines.length === 1) lines.push('  (nothing: a root image)');
  lines.push(label(node), 'below:');
  const children = new Map<string, string[]>();
  for (const r of below) for (const p of r.parents) children.set(p.image, [...(children.get(p.image) ?? []), r.image]);
  const printed = new Set<string>();
  const tree = (i: string, indent: string): void => {
    for (const c of (children.get(i) ?? []).sort()) {
      const again = printed.has(c);
      lines.push(`${indent}└─ ${label(byImage.get(c)!)}${again ? ' (shown above)' : ''}`);
      printed.add(c);
      if (!again) tree(c, `${indent}   `);
    }
  };
  tree(image, '  ');
  if (below.length === 0) lines.push('  (nothing: no image is built from it)');
  return lines.join('\n');
}

/** `lineage scan DIR`: learns parents from Dockerfiles and stores them (errors reported per file, others go on). */
export async function lineageScanCommand(dir: string, options: { table?: string; dryRun?: boolean; buildArg?: string[] }): Promise<{ output: string; failed: boolean }> {
  const buildArgs = Object.fromEntries((options.buildArg ?? []).map((a) => {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new UsageError(`--build-arg ${JSON.stringify(a)} must be NAME=value`);
    return [a.slice(0, eq), a.slice(eq + 1)];
  }));
  const scan = await scanDockerfiles(dir, { buildArgs });
  const lines = scan.images.map((i) => `${i.file}: ${i.image} ← ${i.parents.map((p) => `${p.image}${p.role === 'build' ? ' (build)' : ''}`).join(', ') || '(scratch)'}`);
  for (const e of scan.errors) lines.push(`${e.file}${e.line ? `:${e.line}` : ''}: error: ${e.message}`);
  if (!options.dryRun && scan.images.length > 0) {
    const store = await openStore({ table: options.table });
    try {
      const existing = await Promise.all(scan.images.map((i) => store.lineage.getImage(i.image)));
      const nodes: ImageNode[] = scan.images.map((i, k) => ({
        ...(existing[k] ?? { tier: 'application' as const }),
        image: i.image,
        parents: i.parents,
      }));
      await store.lineage.putImages(nodes);
      lines.push(`stored ${nodes.length} image(s) in the ${store.where}`);
    } finally {
      await store.close();
    }
  }
  return { output: lines.join('\n'), failed: scan.errors.length > 0 };
}
