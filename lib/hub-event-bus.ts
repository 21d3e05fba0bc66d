import { Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { OrganizationConfig } from '../lambdas/domain/config';

/** Fixed name: spokes build the hub bus ARN from account, region and this name (no cross-account reference). */
export const HUB_EVENT_BUS_NAME = 'patchline-hub';

/** ARN of the hub bus; `partition` defaults to the commercial partition. */
export function hubEventBusArn(hub: { account: string; region: string }, partition = 'aws'): string {
  return `arn:${partition}:events:${hub.region}:${hub.account}:event-bus/${HUB_EVENT_BUS_NAME}`;
}

export interface HubEventBusProps {
  /** The validated `organization` section of the config: the spokes admitted, or the organization. */
  readonly organization: OrganizationConfig;
}

/**
 * The bus spokes forward ECR, Inspector2 and CodeBuild events to. Its resource policy admits events:PutEvents from
 * exactly the configured spoke accounts, or from any principal of the organization when `organizationId` is set.
 * Rules on this bus that feed the workflows are not created yet (see docs/organization.md).
 */
export class HubEventBus extends Construct {
  public readonly eventBus: events.EventBus;

  public constructor(scope: Construct, id: string, props: HubEventBusProps) {
    super(scope, id);
    const { organization } = props;
    if (organization.spokes.length === 0) {
      throw new Error('HubEventBus: organization.spokes is empty; a hub bus with no spoke admits nobody (list at least one spoke)');
    }
    this.eventBus = new events.EventBus(this, 'Bus', { eventBusName: HUB_EVENT_BUS_NAME, description: 'Patchline hub: events forwarded by spoke accounts' });

    if (organization.organizationId !== undefined) {
      this.eventBus.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'PatchlineOrganizationPutEvents',
          principals: [new iam.AnyPrincipal()],
          actions: ['events:PutEvents'],
          resources: [this.eventBus.eventBusArn],
          conditions: { StringEquals: { 'aws:PrincipalOrgID': organization.organizationId } },
        }),
      );
    } else {
      // One account may be a spoke in several regions: list it once.
      const accounts = [...new Set(organization.spokes.map((s) => s.account))].filter((a) => !Token.isUnresolved(a));
      this.eventBus.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'PatchlineSpokesPutEvents',
          principals: accounts.map((a) => new iam.AccountPrincipal(a)),
          actions: ['events:PutEvents'],
          resources: [this.eventBus.eventBusArn],
        }),
      );
    }
  }
}
