import { readFileSync } from 'fs';
import { parseConfig, PatchlineConfig } from '../lambdas/domain/config';
import { ImageNode } from '../lambdas/domain/lineage';
import { parseLineageFile } from '../lambdas/domain/lineage-file';
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

export function loadLineage(file: string): ImageNode[] {
  return parseLineageFile(file, readText(file, 'lineage file'));
}
