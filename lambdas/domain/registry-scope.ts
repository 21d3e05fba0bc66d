import { z } from 'zod';
import { isRepositoryName } from './image-ref';
import { isInternalImageKey } from './lineage';

/**
 * Which registry (account + region) an image key names, for a hub with spokes. Keys stay backward compatible: an image
 * in the hub's own account/region keeps its bare repository name (`enterprise/python-311`); an image of a configured
 * spoke is keyed by its registry host and repository (`222222222222.dkr.ecr.eu-west-1.amazonaws.com/apps/payments`),
 * with no tag, which tells it apart from an external key (those always carry a tag or digest).
 */

const AWS_ACCOUNT = /^\d{12}$/;
const AWS_REGION = /^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;
const REGISTRY_KEY = /^(\d{12})\.dkr\.ecr\.([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})\.amazonaws\.com(?:\.cn)?\/(.+)$/;

const RegistryLocationSchema = z.strictObject({
  account: z.string().regex(AWS_ACCOUNT, 'an AWS account id is 12 digits'),
  region: z.string().regex(AWS_REGION, 'not an AWS region name (e.g. eu-west-1)'),
});
export type RegistryLocation = z.infer<typeof RegistryLocationSchema>;

/** The hub and the spokes, as the image-pushed Lambda receives them (`PATCHLINE_REGISTRY_SCOPE`). */
export const RegistryScopeSettingsSchema = z.strictObject({ hub: RegistryLocationSchema, spokes: z.array(RegistryLocationSchema) });
export type RegistryScopeSettings = z.infer<typeof RegistryScopeSettingsSchema>;

/** Environment variable holding the JSON RegistryScopeSettings; absent: a single-account deployment. */
export const REGISTRY_SCOPE_ENV = 'PATCHLINE_REGISTRY_SCOPE';

/** Name of the role the hub assumes in a spoke; per region, as IAM names are account-wide and a spoke may span regions. */
export function hubAccessRoleName(region: string): string {
  return `PatchlineHubAccess-${region}`;
}

/** The partition a region belongs to (IAM ARNs carry it). */
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

export function hubAccessRoleArn(account: string, region: string): string {
  return `arn:${partitionOf(region)}:iam::${account}:role/${hubAccessRoleName(region)}`;
}

/** `222222222222.dkr.ecr.eu-west-1.amazonaws.com` */
export function registryHost(account: string, region: string): string {
  return `${account}.dkr.ecr.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

export interface RegistryImage extends RegistryLocation {
  readonly repository: string;
}

/** The account, region and repository of a registry-qualified key; undefined for anything else (tags, other hosts). */
export function parseRegistryKey(key: string): RegistryImage | undefined {
  const match = REGISTRY_KEY.exec(key);
  if (!match || !isRepositoryName(match[3])) return undefined;
  return { account: match[1], region: match[2], repository: match[3] };
}

export const BuildPlacementKind = {
  /** CodeBuild in the hub account, with the state machine's own role. */
  HUB: 'hub',
  /** CodeBuild in the owning spoke account and region, through its PatchlineHubAccess-<region> role. */
  SPOKE: 'spoke',
  /** The owning account cannot be reached from the hub's workflow (see reason); no configured spoke is, today. */
  UNREACHABLE: 'unreachable',
} as const;
export type BuildPlacementKind = (typeof BuildPlacementKind)[keyof typeof BuildPlacementKind];

/** Where a rebuild of an image runs; `build*` go into the RebuildRequest (the state machine chooses on buildRoleArn). */
export type BuildPlacement =
  | { readonly kind: typeof BuildPlacementKind.HUB; readonly buildAccount?: string; readonly buildRegion?: string }
  | { readonly kind: typeof BuildPlacementKind.SPOKE; readonly buildAccount: string; readonly buildRegion: string; readonly buildRoleArn: string }
  | { readonly kind: typeof BuildPlacementKind.UNREACHABLE; readonly reason: string };

export class UnconfiguredRegistryError extends Error {
  public readonly code = 'UNCONFIGURED_REGISTRY';
  public constructor(public readonly account: string, public readonly region: string, options?: { cause?: unknown }) {
    super(`account ${account} in ${region} is neither the hub nor a configured spoke (organization.spokes): its events are refused`, options);
    this.name = 'UnconfiguredRegistryError';
  }
}

export class InvalidRegistryScopeError extends Error {
  public readonly code = 'INVALID_REGISTRY_SCOPE';
  public constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(`${REGISTRY_SCOPE_ENV} is invalid: ${problems.join('; ')}`, options);
    this.name = 'InvalidRegistryScopeError';
  }
}

const where = (account: string, region: string): string => `${account}/${region}`;

/** Keys, internal/external, pins and build placement of images across the hub and its spokes. */
export class RegistryScope {
  private readonly spokes: ReadonlySet<string>;

  private constructor(private readonly settings: RegistryScopeSettings | undefined) {
    this.spokes = new Set((settings?.spokes ?? []).map((s) => where(s.account, s.region)));
  }

  /** No organization: every image is keyed by its repository and events of any account are accepted, as before. */
  public static singleAccount(): RegistryScope {
    return new RegistryScope(undefined);
  }

  public static of(settings: RegistryScopeSettings): RegistryScope {
    const parsed = RegistryScopeSettingsSchema.safeParse(settings);
    if (!parsed.success) throw new InvalidRegistryScopeError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`), { cause: parsed.error });
    return new RegistryScope(parsed.data);
  }

  /** From the config's `organization` section (only account and region of hub and spokes matter here). */
  public static forOrganization(organization: { hub: RegistryLocation; spokes: readonly RegistryLocation[] } | undefined): RegistryScope {
    if (!organization) return RegistryScope.singleAccount();
    return RegistryScope.of({ hub: organization.hub, spokes: organization.spokes.map((s) => ({ account: s.account, region: s.region })) });
  }

  /** From `PATCHLINE_REGISTRY_SCOPE` (JSON); unset means a single-account deployment. */
  public static fromEnvironment(value: string | undefined): RegistryScope {
    if (value === undefined || value === '') return RegistryScope.singleAccount();
    let raw: unknown;
    try {
      raw = JSON.parse(value);
    } catch (error) {
      throw new InvalidRegistryScopeError([`not JSON (${(error as Error).message})`], { cause: error });
    }
    return RegistryScope.of(raw as RegistryScopeSettings);
  }

  /** The value for `PATCHLINE_REGISTRY_SCOPE`; undefined for a single-account deployment. */
  public toEnvironment(): string | undefined {
    return this.settings ? JSON.stringify(this.settings) : undefined;
  }

  public get hub(): RegistryLocation | undefined {
    return this.settings?.hub;
  }

  public isHub(account: string, region: string): boolean {
    return this.settings !== undefined && this.settings.hub.account === account && this.settings.hub.region === region;
  }

  public isSpoke(account: string, region: string): boolean {
    return this.spokes.has(where(account, region));
  }

  /** The key of an image pushed to `repository` in `account`/`region`; refuses a registry that is not configured. */
  public keyOf(account: string, region: string, repository: string): string {
    if (!this.settings || this.isHub(account, region)) return repository;
    if (this.isSpoke(account, region)) return `${registryHost(account, region)}/${repository}`;
    throw new UnconfiguredRegistryError(account, region);
  }

  /** The key of `repository` in every registry events are accepted from: the hub's (bare) first, then each spoke's. */
  public keysOf(repository: string): string[] {
    return [repository, ...(this.settings?.spokes ?? []).map((s) => `${registryHost(s.account, s.region)}/${repository}`)];
  }

  /** A qualified key naming the hub's own registry becomes its bare repository name (one image, one key). */
  public canonicalKey(key: string): string {
    const image = parseRegistryKey(key);
    return image && this.isHub(image.account, image.region) ? image.repository : key;
  }

  /** Internal: an ECR image Patchline may rebuild (the hub's, or a configured spoke's); anything else is external. */
  public isInternal(key: string): boolean {
    const image = parseRegistryKey(key);
    // Without an organization a qualified key is what it always was: a repository-shaped key, so internal.
    if (image && this.settings) return this.isHub(image.account, image.region) || this.isSpoke(image.account, image.region);
    return isInternalImageKey(key);
  }

  /** The registry of an internal key (a bare one is the hub's; `fallback` when no hub is configured). */
  public locate(key: string, fallback?: RegistryLocation): RegistryImage | undefined {
    if (!this.isInternal(key)) return undefined;
    const image = parseRegistryKey(key);
    if (image && this.settings) return image;
    const home = this.settings?.hub ?? fallback;
    return home ? { account: home.account, region: home.region, repository: key } : undefined;
  }

  /**
   * The reference a build pulls: an internal image by its own registry's URI and digest, an external one by its
   * registry and digest; the bare key when the digest is unknown. `fallback` locates bare keys without a hub.
   */
  public pinnedReference(key: string, digest: string | undefined, fallback: RegistryLocation): string {
    if (this.isInternal(key)) {
      if (!digest) return key;
      const image = this.locate(key, fallback)!;
      return `${registryHost(image.account, image.region)}/${image.repository}@${digest}`;
    }
    if (!digest) return key;
    return `${key.replace(/:[^/:@]+$/, '').split('@')[0]}@${digest}`;
  }

  /**
   * Where a rebuild of `key` runs: a spoke image in its own account and region, through its hub-access role. Step
   * Functions assumes a task role across accounts but not across regions, so the rebuild workflow starts a spoke build
   * outside the hub's region through the start-remote-build Lambda instead (it chooses on `buildRegion`).
   */
  public placement(key: string): BuildPlacement {
    if (!this.settings) return { kind: BuildPlacementKind.HUB };
    const hub = this.settings.hub;
    const image = parseRegistryKey(key);
    if (!image || !this.isSpoke(image.account, image.region)) return { kind: BuildPlacementKind.HUB, buildAccount: hub.account, buildRegion: hub.region };
    return { kind: BuildPlacementKind.SPOKE, buildAccount: image.account, buildRegion: image.region, buildRoleArn: hubAccessRoleArn(image.account, image.region) };
  }

  /** The spoke roles the hub's rebuild workflow may assume: exactly those of spokes in the hub's region. */
  public buildRoleArns(): string[] {
    if (!this.settings) return [];
    const hub = this.settings.hub;
    return this.settings.spokes.filter((s) => s.region === hub.region).map((s) => hubAccessRoleArn(s.account, s.region));
  }

  /** The hub-access roles of every configured spoke, in configuration order: what learn-lineage may assume to read them. */
  public hubAccessRoleArns(): string[] {
    return (this.settings?.spokes ?? []).map((s) => hubAccessRoleArn(s.account, s.region));
  }

  /** The spoke roles start-remote-build may assume: exactly those of spokes outside the hub's region. */
  public remoteBuildRoleArns(): string[] {
    if (!this.settings) return [];
    const hub = this.settings.hub;
    return this.settings.spokes.filter((s) => s.region !== hub.region).map((s) => hubAccessRoleArn(s.account, s.region));
  }
}
