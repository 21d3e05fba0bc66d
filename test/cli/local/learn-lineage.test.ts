import { join } from 'path';
import { loadLineage } from '../../../cli/input-files';
import { LocalRuntime } from '../../../cli/local/local-runtime';
import { BaseImageAnnotation, ManifestMediaType } from '../../../lambdas/domain/oci-base-image';
import { digestOf, projectConfig, projectTemplate, pushEvent, REPO_ROOT } from '../../support/template';

const SEED = loadLineage(join(REPO_ROOT, 'examples', 'lineage.yaml'));
/** The account and region of the real ECR push sample that pushEvent derives from. */
const REGISTRY = '123456789012.dkr.ecr.us-west-2.amazonaws.com';

function annotatedManifest(annotations: Record<string, string>, config = digestOf('config')): Record<string, unknown> {
  return { schemaVersion: 2, mediaType: ManifestMediaType.OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 }, layers: [], annotations };
}

function learnedOutputs(runtime: LocalRuntime): Array<Record<string, unknown>> {
  return runtime.stepFunctions.allExecutions
    .filter((e) => e.stateMachine.includes('ImagePushed'))
    .map((e) => (e.output as { learned?: Record<string, unknown> } | undefined)?.learned ?? {});
}

describe('Class: LocalRuntime', () => {
  describe('Method: runUntilQuiet (learn-lineage before DecideRebuilds)', () => {
    let runtime: LocalRuntime | undefined;
    afterEach(async () => {
      await runtime?.stop();
      runtime = undefined;
    });

    it('adds a pushed image unknown to the lineage below the base its manifest declares, so the next push of that base rebuilds it too', async () => {
      runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
      const pythonDigest = digestOf('enterprise/python-311 current');
      const newApi = digestOf('apps/new-api 1.0');
      runtime.ecr.putImage('apps/new-api', newApi, {
        manifest: annotatedManifest({ [BaseImageAnnotation.NAME]: `${REGISTRY}/enterprise/python-311@${pythonDigest}`, [BaseImageAnnotation.DIGEST]: pythonDigest }),
      });
      runtime.ecr.tagRepository('apps/new-api', { owner: 'payments-team', 'build-project': 'apps-new-api' });

      runtime.send(pushEvent('apps/new-api', newApi, '1.0'));
      await runtime.runUntilQuiet();

      expect(runtime.result().builds).toEqual([]);
      expect(await runtime.deps.lineage.getImage('apps/new-api')).toEqual({
        image: 'apps/new-api',
        tier: 'application',
        owner: 'payments-team',
        parents: [{ image: 'enterprise/python-311', role: 'runtime' }],
        build: { project: 'apps-new-api' },
      });
      expect(runtime.calls.filter((c) => c.service === 'ecr').map((c) => c.action)).toEqual(['BatchGetImage', 'ListTagsForResource']);

      const patched = digestOf('enterprise/python-311 patched');
      runtime.send(pushEvent('enterprise/python-311', patched, '1.5'));
      await runtime.runUntilQuiet();

      const builds = runtime.result().builds;
      expect(builds.map((b) => b.image).sort()).toEqual(['apps/new-api', 'apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
      expect(builds.find((b) => b.image === 'apps/new-api')).toMatchObject({ project: 'apps-new-api', baseImage: `${REGISTRY}/enterprise/python-311@${patched}`, status: 'SUCCEEDED' });
      // Each rebuilt image's own push declared its freshly built parent: confirmed, not re-parented, digest recorded.
      const rebuilt = builds.find((b) => b.image === 'apps/new-api')!;
      const confirmation = learnedOutputs(runtime).find((l) => l.image === 'apps/new-api' && l.digest !== newApi);
      expect(confirmation).toMatchObject({ outcome: 'unchanged', parent: 'enterprise/python-311', parentDigest: patched });
      expect(rebuilt.status).toBe('SUCCEEDED');
      expect(runtime.result().deadLetters).toEqual([]);
    });

    it('goes on with the rebuild cascade when learning fails, and records the failure in the execution', async () => {
      runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
      const pushed = digestOf('enterprise without config blob');
      // No annotations and a config blob ECR does not hold: reading it fails (not a refusal of the image).
      runtime.ecr.putImage('enterprise/python-311', pushed, { manifest: { ...annotatedManifest({}), annotations: undefined } });

      runtime.send(pushEvent('enterprise/python-311', pushed));
      await runtime.runUntilQuiet();

      expect(runtime.result().builds.map((b) => b.image).sort()).toEqual(['apps/orders-api', 'apps/payments-api', 'builders/python-ci']);
      const first = runtime.result().executions[0];
      expect(first).toMatchObject({ status: 'SUCCEEDED' });
      expect(learnedOutputs(runtime)[0]).toMatchObject({ Error: 'LayersNotFoundException' });
      expect(runtime.result().deadLetters).toEqual([]);
    });

    it('refuses a learned parent that closes a cycle, keeps the lineage, and still cascades the push', async () => {
      runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
      const before = await runtime.deps.lineage.descendants('enterprise/python-311');
      const pushed = digestOf('enterprise from payments');
      runtime.ecr.putImage('enterprise/python-311', pushed, { manifest: annotatedManifest({ [BaseImageAnnotation.NAME]: `${REGISTRY}/apps/payments-api:latest` }) });

      runtime.send(pushEvent('enterprise/python-311', pushed));
      await runtime.runUntilQuiet();

      expect(learnedOutputs(runtime)[0]).toMatchObject({ outcome: 'refused', reason: expect.stringContaining('lineage cycle refused') });
      expect(await runtime.deps.lineage.descendants('enterprise/python-311')).toEqual(before);
      expect(runtime.result().builds).toHaveLength(3);
    });

    it('dead-letters an invalid push once, before learning or deciding anything', async () => {
      runtime = await LocalRuntime.start({ config: projectConfig(), lineage: SEED, template: projectTemplate() });
      runtime.send(pushEvent('apps/payments-api', 'sha256:0123'));
      await runtime.runUntilQuiet();

      const { deadLetters, builds, executions } = runtime.result();
      expect(deadLetters).toHaveLength(1);
      expect(deadLetters[0].reason).toContain('image-digest');
      expect(builds).toEqual([]);
      expect(executions).toEqual([expect.objectContaining({ status: 'FAILED' })]);
      expect(runtime.calls.filter((c) => c.service === 'ecr')).toEqual([]);
    });
  });
});
