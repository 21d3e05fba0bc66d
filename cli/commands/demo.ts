import { join } from 'path';
import { LineageGraph } from '../../lambdas/domain/lineage';
import { loadConfig, loadLineage } from '../input-files';
import { formatSimulation, runSimulation } from './simulate';

const ROOT = join(__dirname, '..', '..');

/**
 * The seed scenario: a patched enterprise/python-311 is pushed; every image built from it is rebuilt from the new
 * digest, once each, the vendor image is left alone, and a replay of the same push starts nothing new.
 */
export async function demoCommand(): Promise<string> {
  const lineageFile = join(ROOT, 'examples', 'lineage.yaml');
  const lineage = loadLineage(lineageFile);
  const config = loadConfig(join(ROOT, 'patchline.config.json'));
  const graph = LineageGraph.fromImages(lineage);
  const lines: string[] = ['Patchline demo — everything runs locally: the synthesized state machines, dynalite, a local event bus.', ''];
  lines.push('Lineage (examples/lineage.yaml):');
  const roots = [...graph.images()].filter((n) => n.parents.length === 0).map((n) => n.image).sort();
  const draw = (image: string, indent: string): void => {
    const n = graph.require(image);
    lines.push(`${indent}${image}  [${n.tier}${n.owner ? `, ${n.owner}` : ''}${n.build ? `, CodeBuild ${n.build.project}` : ''}]`);
    for (const c of graph.children(image)) draw(c, `${indent}   └─ `.replace(/└─ (?=.*└─)/, '   '));
  };
  for (const r of roots) draw(r, '  ');
  const digest = `sha256:${'5e'.repeat(32)}`;
  const push = {
    version: '0',
    id: 'demo-push-enterprise-python-311',
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    account: '123456789012',
    time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region: 'eu-west-1',
    resources: [],
    detail: { result: 'SUCCESS', 'repository-name': 'enterprise/python-311', 'image-digest': digest, 'action-type': 'PUSH', 'image-tag': '1.4.2' },
  };
  lines.push('', `Event: the platform team pushes a patched enterprise/python-311:1.4.2@${digest.slice(0, 19)}…, and EventBridge delivers it twice (a replay).`, '');
  const sim = await runSimulation([push, structuredClone(push)], lineage, config, {}, 'demo');
  lines.push(formatSimulation(sim));
  const built = sim.result.builds.map((b) => b.image);
  const twice = built.filter((b, i) => built.indexOf(b) !== i);
  lines.push('');
  lines.push(`Outcome: ${new Set(built).size} image(s) rebuilt from the new digest, ${twice.length === 0 ? 'none twice' : `TWICE: ${twice.join(', ')}`}; ` +
    `vendor/observability-agent ${built.includes('vendor/observability-agent') ? 'WAS REBUILT (wrong)' : 'untouched (COTS: alert-only)'}.`);
  return lines.join('\n');
}
