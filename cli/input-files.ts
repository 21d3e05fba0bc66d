import { readFileSync } from 'fs';
import { parseConfig, PatchlineConfig } from '../lambdas/domain/config';
import { ImageNode } from '../lambdas/domain/lineage';
import { parseLineageFile } from '../lambdas/domain/lineage-file';
import { RegistryScope } from '../lambdas/domain/registry-scope';
import { UsageError } from './cli-error';

export function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

export function readJson(file: string, what: string): unknown {
  const text = readText(file, what);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${file} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function loadConfig(file: string): PatchlineConfig {
  return parseConfig(readJson(file, 'config'), file);
}

/** A lineage file; with the config's organization, a hub image named by its qualified key gets its bare key. */
export function loadLineage(file: string, config?: PatchlineConfig): ImageNode[] {
  const scope = config?.organization ? RegistryScope.forOrganization(config.organization) : undefined;
  return parseLineageFile(file, readText(file, 'lineage file'), scope ? { canonicalKey: (key) => scope.canonicalKey(key) } : {});
}
