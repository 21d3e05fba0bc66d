import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { PatchlineConfig } from '../lambdas/domain/config';
import { REGISTRY_SCOPE_ENV, RegistryScope } from '../lambdas/domain/registry-scope';

/**
 * Lets the rebuild-image workflow start builds in spoke accounts: sts:AssumeRole on exactly the PatchlineHubAccess
 * roles of the spokes in the hub's region (Step Functions task credentials cross accounts, not regions). Nothing for
 * a single-account config.
 */
export function grantSpokeBuilds(machine: sfn.StateMachine, config: PatchlineConfig): void {
  const roles = RegistryScope.forOrganization(config.organization).buildRoleArns();
  if (roles.length === 0) return;
  machine.addToRolePolicy(new iam.PolicyStatement({ sid: 'BuildInSpokeAccounts', actions: ['sts:AssumeRole'], resources: roles }));
}

/** Gives a function the hub and spokes (PATCHLINE_REGISTRY_SCOPE), so it keys images by registry; nothing without an organization. */
export function bindRegistryScope(fn: lambda.Function, config: PatchlineConfig): void {
  const value = RegistryScope.forOrganization(config.organization).toEnvironment();
  if (value !== undefined) fn.addEnvironment(REGISTRY_SCOPE_ENV, value);
}
