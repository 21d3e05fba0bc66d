import { readFileSync } from 'fs';
import { join } from 'path';
import { parseConfig, PatchlineConfig } from '../../lambdas/domain/config';
import { CfnTemplate, synthesizeTemplate } from '../../cli/local/synthesized-template';

export const REPO_ROOT = join(__dirname, '..', '..');
export const SHARED_DATA = join(REPO_ROOT, '..', 'shared', 'data');

export function sampleEvent(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(SHARED_DATA, 'events', name), 'utf8')) as Record<string, unknown>;
}

export const PUSH_SAMPLE = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-action-PUSH.json';
export const DELETE_SAMPLE = 'awsdocs-amazon-ecr-user-guide@8f2dbe92__doc_source__ecr-eventbridge.md__ecr-image-action-DELETE.json';

export function projectConfig(): PatchlineConfig {
  return parseConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'patchline.config.json'), 'utf8')));
}

let cached: CfnTemplate | undefined;
/** The stack synthesized once per test file (bundling skipped), from the project's own config. */
export function projectTemplate(): CfnTemplate {
  cached ??= synthesizeTemplate(projectConfig());
  return cached;
}

/** A push of `repository` at `digest`, derived from the real ECR sample. */
export function pushEvent(repository: string, digest: string, tag = 'latest'): Record<string, unknown> {
  const event = structuredClone(sampleEvent(PUSH_SAMPLE));
  event.detail = { ...(event.detail as object), 'repository-name': repository, 'image-digest': digest, 'image-tag': tag };
  return event;
}

export function digestOf(seed: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return `sha256:${require('crypto').createHash('sha256').update(seed).digest('hex')}`;
}
