import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidImageReferenceError } from './image-ref';
import { DuplicateImageError, imageKey, ImageNode, ParentEdge, ParentRole, resolveParentKey, Tier, TIERS } from './lineage';

const ParentSchema = z.union([
  z.string().min(1),
  z.strictObject({ image: z.string().min(1), role: z.enum([ParentRole.RUNTIME, ParentRole.BUILD]).default(ParentRole.RUNTIME) }),
]);

const ImageEntrySchema = z.strictObject({
  image: z.string().min(1).max(512),
  tier: z.enum(TIERS as [Tier, ...Tier[]]).optional(),
  owner: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an owner id is 1-64 letters, digits, ".", "_" or "-"')
    .optional(),
  parents: z.array(ParentSchema).max(64).default([]),
  build: z.strictObject({ project: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/, 'not a CodeBuild project name') }).optional(),
});

export const LineageFileSchema = z.strictObject({
  images: z.array(ImageEntrySchema).max(100_000),
});
export type LineageFile = z.infer<typeof LineageFileSchema>;

export class LineageFileError extends Error {
  public readonly code = 'LINEAGE_FILE_INVALID';
  public constructor(public readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
    this.name = 'LineageFileError';
  }
}

export const LineageFormat = { YAML: 'yaml', JSON: 'json', TSV: 'tsv' } as const;
export type LineageFormat = (typeof LineageFormat)[keyof typeof LineageFormat];

/** A TSV is recognised by its file name, or by a first data line of exactly two tab-separated fields. */
export function detectLineageFormat(file: string, text: string): LineageFormat {
  if (/\.tsv$/i.test(file)) return LineageFormat.TSV;
  if (/\.json$/i.test(file)) return LineageFormat.JSON;
  if (/\.ya?ml$/i.test(file)) return LineageFormat.YAML;
  const first = text.split('\n').find((l) => l.trim() !== '' && !l.startsWith('#')) ?? '';
  return first.split('\t').length === 2 ? LineageFormat.TSV : LineageFormat.YAML;
}

export interface LineageFileOptions {
  /**
   * Maps each image and parent key to the one key of its image: with an organization, RegistryScope.canonicalKey (a
   * hub image named by its qualified key becomes its bare repository name). @default - keys as written
   */
  readonly canonicalKey?: (key: string) => string;
}

/** Parses a lineage file (YAML/JSON images, or TSV `child<TAB>parent` edges) into image nodes. */
export function parseLineageFile(file: string, text: string, options: LineageFileOptions = {}): ImageNode[] {
  const canonical = options.canonicalKey ?? ((key: string): string => key);
  const format = detectLineageFormat(file, text);
  return format === LineageFormat.TSV ? parseLineageTsv(file, text, canonical) : parseLineageDocument(file, text, format, canonical);
}

function parseLineageDocument(file: string, text: string, format: LineageFormat, canonical: (key: string) => string): ImageNode[] {
  let raw: unknown;
  try {
    raw = format === LineageFormat.JSON ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    throw new LineageFileError(file, `not valid ${format.toUpperCase()}: ${(error as Error).message}`, { cause: error });
  }
  const parsed = LineageFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new LineageFileError(file, `${issue.path.join('.') || '(top level)'}: ${issue.message}`, { cause: parsed.error });
  }
  const entries = parsed.data.images;
  const keys = entries.map((entry, index) => withContext(file, `images.${index}.image`, () => canonical(imageKey(entry.image))));
  const declared = new Map<string, number>();
  keys.forEach((key, index) => {
    if (declared.has(key)) {
      throw new LineageFileError(file, `images.${index}: ${new DuplicateImageError(key, `first at images.${declared.get(key)}`).message}`);
    }
    declared.set(key, index);
  });
  // A parent named by the hub's qualified key with a tag is still the declared hub image.
  const isInternal = (repository: string): boolean => declared.has(canonical(repository));
  return entries.map((entry, index) => {
    const parents: ParentEdge[] = entry.parents.map((p, j) => {
      const reference = typeof p === 'string' ? p : p.image;
      const role = typeof p === 'string' ? ParentRole.RUNTIME : p.role;
      return { image: withContext(file, `images.${index}.parents.${j}`, () => canonical(resolveParentKey(reference, isInternal))), role };
    });
    const tier = entry.tier ?? (parents.length === 0 ? Tier.BASE : Tier.APPLICATION);
    return { image: keys[index], tier, owner: entry.owner, parents, build: entry.build };
  });
}

function parseLineageTsv(file: string, text: string, canonical: (key: string) => string): ImageNode[] {
  const parentsOf = new Map<string, ParentEdge[]>();
  const lines = text.split('\n');
  lines.forEach((rawLine, index) => {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const fields = line.split('\t');
    if (fields.length < 2 || fields.length > 3) {
      throw new LineageFileError(`${file}:${index + 1}`, `expected child<TAB>parent[<TAB>role], got ${fields.length} field(s)`);
    }
    const where = `${file}:${index + 1}`;
    const child = withContext(where, 'child', () => canonical(imageKey(fields[0].trim())));
    const parent = withContext(where, 'parent', () => canonical(imageKey(fields[1].trim())));
    const role = (fields[2]?.trim() || ParentRole.RUNTIME) as ParentRole;
    if (role !== ParentRole.RUNTIME && role !== ParentRole.BUILD) {
      throw new LineageFileError(where, `role ${JSON.stringify(role)} must be runtime or build`);
    }
    const list = parentsOf.get(child) ?? [];
    if (!list.some((p) => p.image === parent)) list.push({ image: parent, role });
    parentsOf.set(child, list);
  });
  return [...parentsOf].map(([image, parents]) => ({ image, tier: Tier.APPLICATION, parents }));
}

function withContext<T>(file: string, where: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof InvalidImageReferenceError) throw new LineageFileError(file, `${where}: ${error.message}`, { cause: error });
    throw error;
  }
}
