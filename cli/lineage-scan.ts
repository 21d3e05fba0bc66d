/**
 * `patchline lineage scan DIR`: finds every Dockerfile under DIR and reads its parents, so a monorepo's lineage can be
 * learned from its build files. One bad file is reported and does not stop the others.
 */
import { readdir, readFile, stat } from 'fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'path';
import { parseDockerfileParents } from '../lambdas/domain/dockerfile-lineage';
import { isRepositoryName } from '../lambdas/domain/image-ref';
import { ParentEdge } from '../lambdas/domain/lineage';

export interface ScanDockerfilesOptions {
  /** `--build-arg` values applied to every file. @default - none */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The image key of a file (path relative to DIR, '/'-separated). @default - derived from the path, see repositoryForPath */
  readonly repositoryFor?: (file: string) => string;
  /** Larger files are reported, not read. @default 1 MiB */
  readonly maxFileBytes?: number;
}

export interface ScannedImage {
  /** Path relative to DIR, '/'-separated. */
  readonly file: string;
  readonly image: string;
  readonly parents: ParentEdge[];
}

export interface ScanError {
  readonly file: string;
  readonly line?: number;
  readonly message: string;
  /** The error's stable code, when it has one. */
  readonly code?: string;
}

export interface DockerfileScan {
  readonly images: ScannedImage[];
  readonly errors: ScanError[];
}

const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
const SKIPPED_DIRECTORIES = new Set(['node_modules', '.git']);
const BASE_NAMES = /^(?:dockerfile|containerfile)$/i;
const SUFFIXED = /^(?:dockerfile|containerfile)\.(.+)$/i; // Dockerfile.alpine
const PREFIXED = /^(.+)\.(?:dockerfile|containerfile)$/i; // alpine.Dockerfile
/** BuildKit reads `<Dockerfile>.dockerignore` as that Dockerfile's ignore file: not a Dockerfile. */
const NOT_DOCKERFILES = /\.dockerignore$/i;

export function isDockerfileName(name: string): boolean {
  if (NOT_DOCKERFILES.test(name)) return false;
  return BASE_NAMES.test(name) || SUFFIXED.test(name) || PREFIXED.test(name);
}

/** `alpine` for `Dockerfile.alpine` and `alpine.Dockerfile`; undefined for a plain Dockerfile. */
export function dockerfileVariant(name: string): string | undefined {
  return SUFFIXED.exec(name)?.[1] ?? PREFIXED.exec(name)?.[1];
}

/**
 * One repository path component: lower case, other characters turned into '-', separator runs that ECR refuses
 * (`..`, `._`, `___`) folded into '-', no separator at either end.
 */
function sanitizeComponent(component: string): string {
  return component
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/[._-]{2,}/g, (run) => (run === '__' || /^-+$/.test(run) ? run : '-'))
    .replace(/^[._-]+|[._-]+$/g, '');
}

/**
 * The default image key of a Dockerfile: its directory relative to DIR (DIR's own name for a file at the top), made a
 * valid repository name, with the variant appended (`web/Dockerfile.alpine` → `web-alpine`). Undefined when nothing
 * valid is left.
 */
export function repositoryForPath(file: string, rootName: string): string | undefined {
  const directory = dirname(file);
  const components = (directory === '.' ? [rootName] : directory.split('/')).map(sanitizeComponent).filter((c) => c !== '');
  if (components.length === 0) return undefined;
  const variant = dockerfileVariant(basename(file));
  if (variant !== undefined) {
    const suffix = sanitizeComponent(variant);
    if (suffix !== '') components[components.length - 1] = `${components[components.length - 1]}-${suffix}`;
  }
  const repository = components.join('/');
  return isRepositoryName(repository) ? repository : undefined;
}

/** Dockerfiles under root, sorted, '/'-separated and relative to root. Symlinked directories are not entered (no loops). */
async function findDockerfiles(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (directory: string): Promise<void> => {
    const entries = await readdir(directory, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) await walk(path);
      } else if (isDockerfileName(entry.name)) {
        if (entry.isFile() || (entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isFile())) {
          found.push(relative(root, path).split(sep).join('/'));
        }
      }
    }
  };
  await walk(root);
  return found;
}

function toScanError(file: string, error: unknown): ScanError {
  const e = error as { message?: unknown; line?: unknown; code?: unknown };
  return {
    file,
    ...(typeof e.line === 'number' ? { line: e.line } : {}),
    message: typeof e.message === 'string' ? e.message : String(error),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
  };
}

/** Reads every Dockerfile under dir into an image key and its parent edges. */
export async function scanDockerfiles(dir: string, options: ScanDockerfilesOptions = {}): Promise<DockerfileScan> {
  const root = resolve(dir);
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const rootName = basename(root);
  const images: ScannedImage[] = [];
  const errors: ScanError[] = [];
  const fileByImage = new Map<string, string>();

  for (const file of await findDockerfiles(root)) {
    try {
      const path = join(root, file);
      const { size } = await stat(path);
      if (size > maxBytes) {
        errors.push({ file, message: `${file}: ${size} bytes, more than the ${maxBytes} a Dockerfile is allowed`, code: 'DOCKERFILE_TOO_LARGE' });
        continue;
      }
      const image = options.repositoryFor ? options.repositoryFor(file) : repositoryForPath(file, rootName);
      if (image === undefined || image === '') {
        errors.push({ file, message: `${file}: no valid repository name can be derived from the path; pass repositoryFor`, code: 'NO_IMAGE_KEY' });
        continue;
      }
      const earlier = fileByImage.get(image);
      if (earlier !== undefined) {
        errors.push({ file, message: `${file}: image key ${JSON.stringify(image)} is already taken by ${earlier}`, code: 'DUPLICATE_IMAGE' });
        continue;
      }
      const text = (await readFile(path, 'utf8')).replace(/^\uFEFF/, '');
      const result = parseDockerfileParents(text, { file, buildArgs: options.buildArgs });
      fileByImage.set(image, file);
      images.push({ file, image, parents: [...result.edges] });
    } catch (error) {
      errors.push(toScanError(file, error));
    }
  }
  return { images, errors };
}
