import { Duration, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { OrganizationConfig } from '../lambdas/domain/config';

/** Fixed name: spokes build the hub bus ARN from account, region and this name (no cross-account reference). */
export const HUB_EVENT_BUS_NAME = 'patchline-hub';

/** ARN of the hub bus; `partition` defaults to the commercial partition. */
export function hubEventBusArn(hub: { account: string; region: string }, partition = 'aws'): string {
  return `arn:${partition}:events:${hub.region}:${hub.account}:event-bus/${HUB_EVENT_BUS_NAME}`;
}

/** The hub's workflows that spoke events feed, as the default-bus rules feed them. */
export interface HubEventBusWorkflows {
  /** Started by ECR pushes forwarded by spokes. */
  readonly imagePushed: sfn.IStateMachine;
  /** Started by Inspector2 findings forwarded by spokes. */
  readonly findingReceived: sfn.IStateMachine;
  /** Where events that cannot be delivered to a workflow go (the hub's dead-letter queue). */
  readonly deadLetterQueue: sqs.IQueue;
  /** The top-level `repositories`: the push filter of a spoke that lists none of its own. */
  readonly repositories: readonly string[];
}

export interface HubEventBusProps {
  /** The validated `organization` section of the config: the spokes admitted, or the organization. */
  readonly organization: OrganizationConfig;
  /**
   * The workflows spoke events start: rules on the hub bus mirror the default bus's ECR push and Inspector2 finding rules.
   * @default - no rules: forwarded events arrive and go nowhere
   */
  readonly workflows?: HubEventBusWorkflows;
}

/** Construct ids of the hub bus rules. */
export const HubRuleId = { ECR_PUSH: 'HubEcrPushRule', INSPECTOR_FINDING: 'HubInspectorFindingRule' } as const;

/**
 * The bus spokes forward ECR, Inspector2 and CodeBuild events to. Its resource policy admits events:PutEvents from
 * exactly the configured spoke accounts, or from any principal of the organization when `organizationId` is set.
 * With `workflows`, rules on this bus start image-pushed and finding-received for spoke events as the default bus's
 * rules do for the hub's own.
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
    if (props.workflows) this.addWorkflowRules(organization, props.workflows);
  }

  private addWorkflowRules(organization: OrganizationConfig, workflows: HubEventBusWorkflows): void {
    const target = (machine: sfn.IStateMachine): targets.SfnStateMachine =>
      new targets.SfnStateMachine(machine, { deadLetterQueue: workflows.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) });
    // Every spoke's repositories: the same filter its own forwarding rule applies. No account filter: an event of an
    // account that is not configured reaches image-pushed, which refuses it into the dead-letter queue with the reason.
    const repositories = [...new Set(organization.spokes.flatMap((s) => s.repositories ?? workflows.repositories))];
    new events.Rule(this, HubRuleId.ECR_PUSH, {
      eventBus: this.eventBus,
      description: 'Successful ECR pushes forwarded by spokes start image-pushed',
      eventPattern: {
        source: ['aws.ecr'],
        detailType: ['ECR Image Action'],
        detail: { 'action-type': ['PUSH'], result: ['SUCCESS'], 'repository-name': repositoryFilter(repositories) },
      },
      targets: [target(workflows.imagePushed)],
    });
    // As the default bus's InspectorFindingRule (lib/finding-workflow.ts).
    new events.Rule(this, HubRuleId.INSPECTOR_FINDING, {
      eventBus: this.eventBus,
      description: 'Inspector2 package-vulnerability findings forwarded by spokes start finding-received',
      eventPattern: {
        source: ['aws.inspector2'],
        detailType: ['Inspector2 Finding'],
        detail: { type: ['PACKAGE_VULNERABILITY'], status: ['ACTIVE', 'SUPPRESSED', 'CLOSED'], resources: { type: ['AWS_ECR_CONTAINER_IMAGE'] } },
      },
      targets: [target(workflows.findingReceived)],
    });
  }
}

/** ECR repository filter for EventBridge patterns: `apps/*` → prefix `apps/` (as lib/patchline-stack.ts's). */
function repositoryFilter(patterns: readonly string[]): Array<string | { prefix: string }> {
  return patterns.map((p) => (p.endsWith('*') ? { prefix: p.slice(0, -1) } : p));
}
