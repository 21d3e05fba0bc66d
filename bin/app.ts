#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { resolve } from 'path';
import { definePatchlineApp, readConfigFile } from '../lib/patchline-app';
import { defineSpokeStacks } from '../lib/spoke-stack';

const app = new App();
const configFile = resolve(String(app.node.tryGetContext('config') ?? 'patchline.config.json'));
try {
  // cdk-nag (AwsSolutions) runs when the app synthesizes: an unacknowledged finding fails `cdk synth`.
  const config = readConfigFile(configFile);
  // Hub and spokes: the hub in its configured account/region, one spoke stack per spoke; otherwise one account.
  definePatchlineApp(app, config, config.organization?.hub ?? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION });
  defineSpokeStacks(app, config);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
