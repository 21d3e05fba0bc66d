import { createHash } from 'crypto';
import { BlobTooLargeError, EcrImages, EcrManifest, verifiedText } from '../../lambdas/aws/ecr-images';
import { isDigest, parseImageRef } from '../../lambdas/domain/image-ref';
import { BaseImageAnnotation, ManifestMediaType } from '../../lambdas/domain/oci-base-image';
import { RecordedCall } from './local-aws';

export interface LocalImage {
  /** The manifest or index as stored (any JSON: tests push hostile ones on purpose). */
  readonly manifest: string | Record<string, unknown>;
  /** @default the document's own mediaType, else an OCI image manifest */
  readonly mediaType?: string;
}

/**
 * ECR stand-in: answers BatchGetImage, GetDownloadUrlForLayer (the blob itself) and ListTagsForResource from what was
 * pushed into it (local builds, or a test), and records every call. Blobs are content-addressed as in ECR; manifests are
 * stored under the digest the push event names (a local build makes its digest up).
 */
export class LocalEcr implements EcrImages {
  /**
   * @param session what every call is recorded with besides its own parameters: a spoke's registry its `Registry`
   *   (`<account>/<region>`), and `withSession` the assumed role and the region called (as the CodeBuild stand-in
   *   records a remote build's)
   */
  public constructor(
    private readonly calls: RecordedCall[],
    private readonly session: Record<string, unknown> = {},
    private readonly manifests = new Map<string, EcrManifest>(),
    private readonly blobs = new Map<string, string>(),
    private readonly tags = new Map<string, Record<string, string>>(),
  ) {}

  /** The same registry read with an assumed role's session (a spoke's, by the hub): its calls record role and region. */
  public withSession(session: { roleArn: string; sessionName: string; region: string }): LocalEcr {
    const recorded = { ...this.session, Credentials: { RoleArn: session.roleArn, RoleSessionName: session.sessionName }, Region: session.region };
    return new LocalEcr(this.calls, recorded, this.manifests, this.blobs, this.tags);
  }

  /** Stores a manifest (or index) under `repository@digest`. */
  public putImage(repository: string, digest: string, image: LocalImage): void {
    const body = typeof image.manifest === 'string' ? image.manifest : JSON.stringify(image.manifest);
    const declared = typeof image.manifest === 'object' ? image.manifest.mediaType : undefined;
    const mediaType = image.mediaType ?? (typeof declared === 'string' ? declared : ManifestMediaType.OCI_MANIFEST);
    this.manifests.set(`${repository}@${digest}`, { body, mediaType });
  }

  /** Stores a blob and returns its digest. */
  public putBlob(repository: string, content: string): string {
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    this.blobs.set(`${repository}@${digest}`, content);
    return digest;
  }

  public tagRepository(repository: string, tags: Record<string, string>): void {
    this.tags.set(repository, { ...this.tags.get(repository), ...tags });
  }

  /**
   * What a local build pushes: an OCI manifest and config whose base annotations are its BASE_IMAGE, as a buildspec
   * running `docker buildx build --annotation org.opencontainers.image.base.name=$BASE_IMAGE …` writes them. A
   * BASE_IMAGE not pinned by digest declares nothing (a real build would not know the digest either).
   */
  public recordBuild(repository: string, digest: string, baseImage: string | undefined): void {
    let annotations: Record<string, string> = {};
    if (baseImage) {
      try {
        const pinned = parseImageRef(baseImage).digest;
        if (pinned) annotations = { [BaseImageAnnotation.NAME]: baseImage, [BaseImageAnnotation.DIGEST]: pinned };
      } catch {
        annotations = {};
      }
    }
    const config = this.putBlob(repository, JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: null }, rootfs: { type: 'layers', diff_ids: [] } }));
    this.putImage(repository, digest, {
      manifest: {
        schemaVersion: 2,
        mediaType: ManifestMediaType.OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 0 },
        layers: [],
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      },
    });
  }

  public async getManifest(repository: string, digest: string): Promise<EcrManifest | undefined> {
    const found = this.manifests.get(`${repository}@${digest}`);
    this.record('BatchGetImage', { repositoryName: repository, imageIds: [{ imageDigest: digest }] }, found ? 'found' : 'ImageNotFound');
    return found;
  }

  public async getBlob(repository: string, digest: string, maxBytes: number): Promise<string> {
    const content = isDigest(digest) ? this.blobs.get(`${repository}@${digest}`) : undefined;
    this.record('GetDownloadUrlForLayer', { repositoryName: repository, layerDigest: digest }, content === undefined ? 'LayersNotFoundException' : 'found');
    if (content === undefined) {
      const error = new Error(`The image layer ${digest} does not exist in the repository ${repository}`);
      error.name = 'LayersNotFoundException';
      throw error;
    }
    const bytes = Buffer.from(content, 'utf8');
    if (bytes.length > maxBytes) throw new BlobTooLargeError(digest, maxBytes);
    return verifiedText(bytes, digest);
  }

  public async repositoryTags(repositoryArn: string): Promise<Record<string, string>> {
    const repository = repositoryArn.split(':repository/')[1] ?? '';
    this.record('ListTagsForResource', { resourceArn: repositoryArn });
    return { ...this.tags.get(repository) };
  }

  private record(action: string, parameters: unknown, outcome?: string): void {
    const withSession = Object.keys(this.session).length > 0 ? { ...(parameters as Record<string, unknown>), ...this.session } : parameters;
    this.calls.push({ service: 'ecr', action, at: new Date().toISOString(), parameters: withSession, ...(outcome ? { outcome } : {}) });
  }
}
