import { BatchGetImageCommand, ECRClient, GetDownloadUrlForLayerCommand, ListTagsForResourceCommand } from '@aws-sdk/client-ecr';
import { createHash } from 'crypto';
import { ManifestMediaType } from '../domain/oci-base-image';

/** What learn-lineage reads from ECR: a manifest by digest, a blob (the image config), a repository's tags. */
export interface EcrImages {
  /** The manifest (or index) stored under `digest`; undefined when ECR has no such image. */
  getManifest(repository: string, digest: string): Promise<EcrManifest | undefined>;
  /** A blob of the repository, refused above `maxBytes` or when its content does not hash to `digest`. */
  getBlob(repository: string, digest: string, maxBytes: number): Promise<string>;
  /** The repository's resource tags. */
  repositoryTags(repositoryArn: string): Promise<Record<string, string>>;
}

export interface EcrManifest {
  readonly body: string;
  readonly mediaType?: string;
}

/** Every manifest type readBaseImage understands: ECR converts nothing when the stored type is among them. */
export const ACCEPTED_MANIFEST_TYPES: readonly string[] = Object.values(ManifestMediaType);

export class BlobTooLargeError extends Error {
  public readonly code = 'BLOB_TOO_LARGE';
  public constructor(public readonly digest: string, public readonly maxBytes: number) {
    super(`blob ${digest} is larger than the ${maxBytes} bytes allowed`);
    this.name = 'BlobTooLargeError';
  }
}

export class BlobDigestMismatchError extends Error {
  public readonly code = 'BLOB_DIGEST_MISMATCH';
  public constructor(public readonly digest: string, actual: string) {
    super(`blob ${digest} downloaded with content ${actual}: refused`);
    this.name = 'BlobDigestMismatchError';
  }
}

export class EcrReadError extends Error {
  public readonly code = 'ECR_READ_FAILED';
  public constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EcrReadError';
  }
}

export interface SdkEcrImagesProps {
  readonly client: ECRClient;
  /** Downloads a pre-signed blob URL. @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default 10 seconds */
  readonly blobTimeoutMillis?: number;
}

/** ECR through the AWS SDK: BatchGetImage, GetDownloadUrlForLayer (+ the pre-signed download), ListTagsForResource. */
export class SdkEcrImages implements EcrImages {
  private readonly fetch: typeof fetch;
  public constructor(private readonly props: SdkEcrImagesProps) {
    this.fetch = props.fetch ?? globalThis.fetch;
  }

  public async getManifest(repository: string, digest: string): Promise<EcrManifest | undefined> {
    const out = await this.props.client.send(
      new BatchGetImageCommand({ repositoryName: repository, imageIds: [{ imageDigest: digest }], acceptedMediaTypes: [...ACCEPTED_MANIFEST_TYPES] }),
    );
    const image = out.images?.[0];
    if (image?.imageManifest !== undefined) return { body: image.imageManifest, ...(image.imageManifestMediaType ? { mediaType: image.imageManifestMediaType } : {}) };
    const failure = out.failures?.[0];
    if (!failure || failure.failureCode === 'ImageNotFound') return undefined;
    throw new EcrReadError(`BatchGetImage ${repository}@${digest}: ${failure.failureCode}: ${failure.failureReason ?? ''}`);
  }

  public async getBlob(repository: string, digest: string, maxBytes: number): Promise<string> {
    const { downloadUrl } = await this.props.client.send(new GetDownloadUrlForLayerCommand({ repositoryName: repository, layerDigest: digest }));
    if (!downloadUrl) throw new EcrReadError(`GetDownloadUrlForLayer ${repository} ${digest}: no download URL`);
    const response = await this.fetch(downloadUrl, { signal: AbortSignal.timeout(this.props.blobTimeoutMillis ?? 10_000) });
    if (!response.ok) throw new EcrReadError(`blob ${digest}: download answered HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (declared > maxBytes) throw new BlobTooLargeError(digest, maxBytes);
    return verifiedText(await readBounded(response, digest, maxBytes), digest);
  }

  public async repositoryTags(repositoryArn: string): Promise<Record<string, string>> {
    const { tags } = await this.props.client.send(new ListTagsForResourceCommand({ resourceArn: repositoryArn }));
    const found: Record<string, string> = {};
    for (const tag of tags ?? []) if (tag.Key !== undefined && tag.Value !== undefined) found[tag.Key] = tag.Value;
    return found;
  }
}

/** Reads at most `maxBytes`: a lying or absent content-length cannot make the function buffer more. */
async function readBounded(response: Response, digest: string, maxBytes: number): Promise<Buffer> {
  if (!response.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new BlobTooLargeError(digest, maxBytes);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/** Content addressing: the blob must hash to the digest it was asked for. */
export function verifiedText(bytes: Buffer, digest: string): string {
  const [algorithm] = digest.split(':');
  const actual = `${algorithm}:${createHash(algorithm === 'sha512' ? 'sha512' : 'sha256').update(bytes).digest('hex')}`;
  if (actual !== digest) throw new BlobDigestMismatchError(digest, actual);
  return bytes.toString('utf8');
}
