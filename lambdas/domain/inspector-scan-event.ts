import { z } from 'zod';
import { describeIssues, InvalidEventError } from './ecr-push-event';
import { DigestSchema, RepositoryNameSchema, TagSchema } from './finding';

/** The scan statuses after which an image's findings are known (Inspector2 "Inspector2 Scan" events). */
export const InspectorScanStatus = { INITIAL_SCAN_COMPLETE: 'INITIAL_SCAN_COMPLETE' } as const;
export type InspectorScanStatus = (typeof InspectorScanStatus)[keyof typeof InspectorScanStatus];

const REPOSITORY_ARN = /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/(.+)$/;

/** Inspector2 names the repository by ARN (`arn:aws:ecr:region:account:repository/name`); a bare name is taken too. */
const RepositorySchema = z
  .string()
  .max(2048)
  .transform((value) => REPOSITORY_ARN.exec(value)?.[1] ?? value)
  .pipe(RepositoryNameSchema);

export const InspectorScanEventSchema = z.object({
  source: z.literal('aws.inspector2'),
  'detail-type': z.literal('Inspector2 Scan'),
  account: z.string().regex(/^\d{12}$/),
  region: z.string().min(1).max(64),
  time: z.iso.datetime(),
  detail: z.object({
    'scan-status': z.enum(InspectorScanStatus),
    'repository-name': RepositorySchema,
    'image-digest': DigestSchema,
    'image-tags': z.array(TagSchema).max(1000).default([]),
    'finding-severity-counts': z.record(z.string(), z.number().int().min(0)).optional(),
  }),
});

export interface InspectorScan {
  readonly repository: string;
  readonly digest: string;
  readonly tags: readonly string[];
  readonly scannedAt: string;
  /** Inspector's count of findings on the image, when the event carries it. */
  readonly totalFindings?: number;
}

/** Parses an "Inspector2 Scan" event; throws InvalidEventError naming each problem. */
export function parseInspectorScanEvent(raw: unknown): InspectorScan {
  const parsed = InspectorScanEventSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidEventError('Inspector2 Scan', describeIssues(parsed.error, raw), { cause: parsed.error });
  const { detail } = parsed.data;
  const total = detail['finding-severity-counts']?.TOTAL;
  return {
    repository: detail['repository-name'],
    digest: detail['image-digest'],
    tags: detail['image-tags'],
    scannedAt: parsed.data.time,
    ...(total !== undefined && { totalFindings: total }),
  };
}
