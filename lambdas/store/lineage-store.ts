import { z } from 'zod';
import { isDigest, isTag } from '../domain/image-ref';
import type { BuildSpec, ImageNode, LineageGraph, ParentEdge, Tier } from '../domain/lineage';

/** One image below (or above) another, with what a rebuild needs to know about it, so no per-image read follows. */
export interface DescendantRecord {
  readonly image: string;
  readonly tier: Tier;
  readonly owner?: string;
  readonly parents: readonly ParentEdge[];
  readonly build?: BuildSpec;
  /** Shortest number of edges between the two images: 1 for a direct child (or parent). */
  readonly depth: number;
}

/** An image key is stored inside sort keys (`001#<image>`), which DynamoDB caps at 1,024 bytes. */
export const MAX_IMAGE_KEY_BYTES = 1_000;
/** Bounds an image item well under DynamoDB's 400 KB item limit (closure items carry the parents list). */
export const MAX_PARENTS = 64;

export const ImageVersionSchema = z.object({
  image: z.string().min(1),
  digest: z.string().refine(isDigest, 'not an OCI digest (algorithm:hex)'),
  tags: z.array(z.string().refine(isTag, 'not a tag')).max(1_000),
  pushedAt: z.iso.datetime({ offset: true }),
  /** The digest of each parent (by image key) this version was built from: drift detection compares it to the parent's current one. */
  parentDigests: z.record(z.string().min(1), z.string().min(1)).optional(),
});
export type ImageVersion = z.infer<typeof ImageVersionSchema>;

export interface PutImagesOptions {
  /** Called after each write request with the writes done so far and the total planned. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PutImagesResult {
  /** Image items written: changed or new images, and `external` images added for unknown parents. Unchanged ones are skipped. */
  readonly imagesWritten: number;
  /** Parents that were not in the lineage and were added as `external` images. */
  readonly externalsAdded: readonly string[];
  /** Descendant-closure items put and deleted to keep `descendants` exact. */
  readonly closureItemsPut: number;
  readonly closureItemsDeleted: number;
  /** Write requests sent (batches of up to 25, retries of unprocessed items included). */
  readonly writeRequests: number;
}

/**
 * The change an updateImage makes, given the image's node as stored (undefined when it has none): the node to store,
 * or undefined (or the same fields) to leave it as it is. Pure: it may be called more than once, and only its last
 * call, with the node read under the write lease, decides what is written.
 */
export type ImageUpdate = (current: ImageNode | undefined) => ImageNode | undefined;

export interface UpdateImageResult {
  /** The image as stored after the update: what the last call of the update returned, or the node it left as it was. */
  readonly node: ImageNode | undefined;
  /** What was written, as putImages reports it; undefined when the update changed nothing (nothing was written). */
  readonly written?: PutImagesResult;
}

/** Where the image lineage and the versions of each image are kept. */
export interface LineageStore {
  /**
   * Adds or replaces images (re-parenting moves the image's whole subtree). Unknown parents become `external` images.
   * Refuses a batch that would close a cycle, or holds an image twice, before anything is written.
   */
  putImages(nodes: readonly ImageNode[], options?: PutImagesOptions): Promise<PutImagesResult>;
  /**
   * Read-modify-write of one image: `update` is called with the node as stored by the writer that holds the lineage
   * write lease, and what it returns is validated and written as putImages writes it, before the lease is released;
   * so two updates of the same image never overwrite each other's fields. An update that changes nothing takes no lease.
   */
  updateImage(image: string, update: ImageUpdate): Promise<UpdateImageResult>;
  getImage(image: string): Promise<ImageNode | undefined>;
  /** Removes an image; if it has children it stays as an `external` parent so nothing downstream is lost. */
  deleteImage(image: string): Promise<void>;
  /** Direct children, by name. */
  children(image: string): Promise<DescendantRecord[]>;
  /** Every image below `image`, each once, nearest first: a paginated read, not one read per image. */
  descendants(image: string): Promise<DescendantRecord[]>;
  /** Every image above `image`, each once, nearest first. */
  ancestors(image: string): Promise<DescendantRecord[]>;
  /** The whole lineage. */
  loadGraph(): Promise<LineageGraph>;
  /** Records a pushed version; `created` is false when that digest was already recorded (a re-sent push). */
  putVersion(version: ImageVersion): Promise<{ created: boolean }>;
  getVersion(image: string, digest: string): Promise<ImageVersion | undefined>;
  /** The version pushed last (by `pushedAt`), or undefined when none was recorded. */
  currentVersion(image: string): Promise<ImageVersion | undefined>;
}

export class ImageKeyTooLongError extends Error {
  public readonly code = 'IMAGE_KEY_TOO_LONG';
  public constructor(public readonly image: string, bytes: number) {
    super(`image key ${JSON.stringify(image.slice(0, 80))}… is ${bytes} bytes; at most ${MAX_IMAGE_KEY_BYTES} are allowed (DynamoDB key limit)`);
    this.name = 'ImageKeyTooLongError';
  }
}

export class TooManyParentsError extends Error {
  public readonly code = 'TOO_MANY_PARENTS';
  public constructor(public readonly image: string, count: number) {
    super(`image ${JSON.stringify(image)} has ${count} parents; at most ${MAX_PARENTS} are allowed`);
    this.name = 'TooManyParentsError';
  }
}

export class InvalidImageVersionError extends Error {
  public readonly code = 'INVALID_IMAGE_VERSION';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidImageVersionError';
  }
}

/** Writes that the store still could not apply after its retries; re-running the same change converges. */
export class LineageWriteIncompleteError extends Error {
  public readonly code = 'LINEAGE_WRITE_INCOMPLETE';
  public constructor(public readonly unprocessed: number, options?: { cause?: unknown }) {
    super(`${unprocessed} lineage write(s) were still unprocessed after retries; re-run the same change to complete it`, options);
    this.name = 'LineageWriteIncompleteError';
  }
}

/**
 * Another writer holds the lineage write lease and did not release it within this writer's wait budget. Nothing was
 * written: retry later (image-pushed's LearnLineage step retries it with backoff).
 */
export class LineageBusyError extends Error {
  public readonly code = 'LINEAGE_BUSY';
  public constructor(
    public readonly holder: string | undefined,
    public readonly leaseExpiresAt: string | undefined,
    waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      `another lineage writer (${holder ?? 'unknown'}) holds the lineage write lease${leaseExpiresAt ? ` until ${leaseExpiresAt}` : ''}; waited ${waitedMs} ms and wrote nothing; try again when it has finished`,
      options,
    );
    this.name = 'LineageBusyError';
  }
}

/**
 * This writer's lease expired or was taken over while it was writing (it stalled for longer than the lease). Writing
 * stopped; the writer that took over repaired the lineage index. Re-running the same change converges.
 */
export class LineageLeaseLostError extends Error {
  public readonly code = 'LINEAGE_LEASE_LOST';
  public constructor(public readonly writer: string, options?: { cause?: unknown }) {
    super(`the lineage write lease of ${writer} expired or was taken over during the write; writing stopped; re-run the same change`, options);
    this.name = 'LineageLeaseLostError';
  }
}
