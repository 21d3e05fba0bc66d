#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { readFileSync } from 'fs';
import { resolve } from 'path';
import { parseConfig } from '../lambdas/domain/config';
import { PatchlineStack } from '../lib/patchline-stack';

const app = new App();
const configFile = resolve(String(app.node.tryGetContext('config') ?? 'patchline.config.json'));
let raw: unknown;
try {
  raw = JSON.parse(readFileSync(configFile, 'utf8'));
} catch (error) {
  console.error(`cannot read ${configFile}: ${(error as Error).message}`);
  process.exit(1);
}
try {
  const config = parseConfig(raw, configFile);
  new PatchlineStack(app, 'Patchline', {
    config,
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    description: 'Patchline: keeps container images patched along their lineage',
  });
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
