import { App, Environment, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'fs';
import { parseConfig, PatchlineConfig } from '../lambdas/domain/config';
import { acknowledgeNagFindings, NagAcknowledgement } from './nag-acknowledgements';
import { PatchlineStack } from './patchline-stack';

export class ConfigFileError extends Error {
  public readonly code = 'CONFIG_FILE_UNREADABLE';
  public constructor(public readonly file: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot read ${file}: ${reason}`, options);
    this.name = 'ConfigFileError';
  }
}

/** Reads and validates patchline.config.json: an unreadable file, bad JSON or an invalid field fails with its name. */
export function readConfigFile(file: string): PatchlineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError(file, (error as Error).message, { cause: error });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigFileError(file, `not JSON (${(error as Error).message})`, { cause: error });
  }
  return parseConfig(raw, file);
}

export interface PatchlineAppResult {
  readonly stack: PatchlineStack;
  /** Every cdk-nag finding acknowledged, with the resource and the reason. */
  readonly acknowledgements: readonly NagAcknowledgement[];
}

/**
 * The deployed app: the Patchline stack checked by cdk-nag's AwsSolutions pack at synthesis (any unacknowledged
 * finding fails `cdk synth`). bin/app.ts and the cdk-nag test build it the same way.
 */
export function definePatchlineApp(app: App, config: PatchlineConfig, env?: Environment): PatchlineAppResult {
  const stack = new PatchlineStack(app, 'Patchline', {
    config,
    env,
    description: 'Patchline: keeps container images patched along their lineage',
  });
  // The acknowledgements also go into the template's Metadata (cdk_nag.rules_to_suppress) for the reviewers.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { writeSuppressionsToCloudFormation: true }));
  return { stack, acknowledgements: acknowledgeNagFindings(stack, config) };
}
