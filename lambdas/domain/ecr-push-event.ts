import { z } from 'zod';
import { isDigest, isRepositoryName, isTag } from './image-ref';

/**
 * The EventBridge "ECR Image Action" event. Everything that later reaches a DynamoDB key, an execution name or a
 * CodeBuild environment override is validated against ECR's own formats here, before anything else happens.
 */
export const EcrPushEventSchema = z.object({
  'detail-type': z.literal('ECR Image Action'),
  source: z.literal('aws.ecr'),
  account: z.string().regex(/^\d{12}$/, 'an AWS account id is 12 digits'),
  region: z.string().regex(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/, 'not an AWS region'),
  time: z.iso.datetime({ offset: true }),
  id: z.string().min(1).max(128),
  detail: z.object({
    result: z.literal('SUCCESS'),
    'action-type': z.literal('PUSH'),
    'repository-name': z.string().refine(isRepositoryName, 'not an ECR repository name'),
    'image-digest': z.string().refine(isDigest, 'not a sha256:<64 hex> image digest'),
    'image-tag': z.string().refine(isTag, 'not a valid image tag').optional(),
  }),
});
export type EcrPushEvent = z.infer<typeof EcrPushEventSchema>;

export interface ImagePush {
  readonly account: string;
  readonly region: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag?: string;
  readonly pushedAt: string;
  readonly eventId: string;
}

export class InvalidEventError extends Error {
  public readonly code = 'INVALID_EVENT';
  public constructor(kind: string, public readonly problems: readonly string[], options?: { cause?: unknown }) {
    super(`invalid ${kind} event: ${problems.join('; ')}`, options);
    this.name = 'InvalidEventError';
  }
}

/** Describes zod issues as `path: message (got …)`, short and safe to log (values are truncated and JSON-quoted). */
export function describeIssues(error: z.ZodError, raw: unknown): string[] {
  return error.issues.slice(0, 5).map((issue) => {
    let value: unknown = raw;
    for (const key of issue.path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    const shown = value === undefined ? 'missing' : escapeForLog(JSON.stringify(value) ?? String(value)).slice(0, 80);
    return `${issue.path.join('.') || '(event)'}: ${issue.message} (got ${shown})`;
  });
}

/** Non-ASCII (bidi overrides, zero-width characters, lookalikes) is shown as \u escapes: a log line cannot be spoofed. */
function escapeForLog(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function parseEcrPushEvent(raw: unknown): ImagePush {
  const parsed = EcrPushEventSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidEventError('ECR push', describeIssues(parsed.error, raw), { cause: parsed.error });
  const { detail } = parsed.data;
  return {
    account: parsed.data.account,
    region: parsed.data.region,
    repository: detail['repository-name'],
    digest: detail['image-digest'],
    tag: detail['image-tag'],
    pushedAt: parsed.data.time,
    eventId: parsed.data.id,
  };
}

/** `123456789012.dkr.ecr.us-west-2.amazonaws.com/enterprise/python-311@sha256:…` */
export function ecrImageUri(account: string, region: string, repository: string, digest: string): string {
  const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${account}.dkr.ecr.${region}.${suffix}/${repository}@${digest}`;
}
