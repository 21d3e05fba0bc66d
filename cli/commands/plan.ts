import { LineageGraph, RebuildPlan, resolveParentKey } from '../../lambdas/domain/lineage';
import { loadLineage } from '../input-files';
import { openStore } from '../store-session';

export interface PlanOptions {
  readonly lineage?: string;
  readonly json?: boolean;
  readonly table?: string;
}

/** Every image downstream of IMAGE in a valid build order, from a lineage file or from the store. */
export async function planCommand(image: string, options: PlanOptions): Promise<string> {
  let plan: RebuildPlan;
  if (options.lineage) {
    const graph = LineageGraph.fromImages(loadLineage(options.lineage));
    plan = graph.planRebuild(resolveParentKey(image, (repository) => graph.has(repository)));
  } else {
    const store = await openStore({ table: options.table });
    try {
      const root = resolveParentKey(image, () => true);
      const rootNode = await store.lineage.getImage(root);
      const below = await store.lineage.descendants(root);
      const graph = LineageGraph.fromImages([rootNode ?? { image: root, tier: 'external', parents: [] }, ...below]);
      plan = graph.planRebuild(root);
    } finally {
      await store.close();
    }
  }
  if (options.json) return JSON.stringify(plan);
  const lines = [`${plan.rebuild.length} image(s) to rebuild below ${plan.root}, in order:`];
  plan.rebuild.forEach((step, i) => lines.push(`${String(i + 1).padStart(5)}. ${step.image}   ← ${step.parents.join(', ')}`));
  return lines.join('\n');
}
