import { DescribeImagesCommand, DescribeRepositoriesCommand, ECRClient, LimitExceededException, StartImageScanCommand } from '@aws-sdk/client-ecr';
import { isDigest } from '../domain/image-ref';

/**
 * A thin ECR client for the rescan: repositories and images page by page (so a Step Functions Map can fan out over
 * them), and StartImageScan for basic scanning. Only what the rescan reads is kept from each response.
 */

/** ECR's largest page for DescribeRepositories and DescribeImages. */
export const ECR_PAGE_SIZE = 1000;

export interface EcrRepository {
  readonly name: string;
  readonly arn: string;
  readonly scanOnPush: boolean;
}

export interface EcrImage {
  readonly repository: string;
  readonly digest: string;
  readonly tags: readonly string[];
  readonly pushedAt?: string;
  /** imageScanStatus.status: IN_PROGRESS, COMPLETE, FAILED, … */
  readonly scanStatus?: string;
  readonly lastScanAt?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly nextToken?: string;
}

export const StartScanResult = { STARTED: 'STARTED', DAILY_LIMIT: 'DAILY_LIMIT' } as const;
export type StartScanResult = (typeof StartScanResult)[keyof typeof StartScanResult];

/** `enterprise/*` → prefix match; `*` → every repository; else the exact name. */
export function matchesRepositoryPattern(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

export class EcrRegistry {
  public constructor(private readonly client: Pick<ECRClient, 'send'>, private readonly options: { readonly registryId?: string } = {}) {}

  /** One page of repositories, keeping those that match `patterns` (ECR cannot filter by prefix server-side). */
  public async repositoriesPage(patterns: readonly string[], nextToken?: string): Promise<Page<EcrRepository>> {
    const out = await this.client.send(
      new DescribeRepositoriesCommand({ ...(this.options.registryId && { registryId: this.options.registryId }), maxResults: ECR_PAGE_SIZE, ...(nextToken && { nextToken }) }),
    );
    const items = (out.repositories ?? [])
      .filter((r) => r.repositoryName !== undefined && patterns.some((p) => matchesRepositoryPattern(p, r.repositoryName!)))
      .map((r) => ({ name: r.repositoryName!, arn: r.repositoryArn ?? '', scanOnPush: r.imageScanningConfiguration?.scanOnPush ?? false }));
    return { items, ...(out.nextToken && { nextToken: out.nextToken }) };
  }

  /** One page of a repository's images. */
  public async imagesPage(repository: string, nextToken?: string): Promise<Page<EcrImage>> {
    const out = await this.client.send(
      new DescribeImagesCommand({
        repositoryName: repository,
        ...(this.options.registryId && { registryId: this.options.registryId }),
        maxResults: ECR_PAGE_SIZE,
        filter: { tagStatus: 'ANY' },
        ...(nextToken && { nextToken }),
      }),
    );
    const items: EcrImage[] = [];
    for (const image of out.imageDetails ?? []) {
      if (!image.imageDigest || !isDigest(image.imageDigest)) continue;
      items.push({
        repository,
        digest: image.imageDigest,
        tags: image.imageTags ?? [],
        ...(image.imagePushedAt && { pushedAt: image.imagePushedAt.toISOString() }),
        ...(image.imageScanStatus?.status && { scanStatus: image.imageScanStatus.status }),
        ...(image.imageScanFindingsSummary?.imageScanCompletedAt && { lastScanAt: image.imageScanFindingsSummary.imageScanCompletedAt.toISOString() }),
      });
    }
    return { items, ...(out.nextToken && { nextToken: out.nextToken }) };
  }

  /** Every image of a repository (all pages). */
  public async images(repository: string): Promise<EcrImage[]> {
    const all: EcrImage[] = [];
    let token: string | undefined;
    do {
      const page = await this.imagesPage(repository, token);
      all.push(...page.items);
      token = page.nextToken;
    } while (token);
    return all;
  }

  /** Starts a basic scan; ECR's one-scan-a-day refusal is an answer, not a failure. */
  public async startImageScan(repository: string, digest: string): Promise<StartScanResult> {
    try {
      await this.client.send(
        new StartImageScanCommand({ repositoryName: repository, imageId: { imageDigest: digest }, ...(this.options.registryId && { registryId: this.options.registryId }) }),
      );
      return StartScanResult.STARTED;
    } catch (error) {
      if (error instanceof LimitExceededException || (error as Error).name === 'LimitExceededException') return StartScanResult.DAILY_LIMIT;
      throw error;
    }
  }
}
