import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** The message attributes every alert carries; owner subscriptions filter on `owner`. */
export const ALERT_ATTRIBUTES = ['owner', 'severity', 'image', 'kind', 'vulnerability'] as const;

/** Errors of an SNS Publish that a retry can get past. */
const SNS_TRANSIENT_ERRORS = ['SNS.SnsException', 'SNS.ThrottledException', 'SNS.InternalErrorException', 'SNS.KmsThrottlingException'];

/** Errors of a StartExecution that a retry can get past. */
const START_EXECUTION_TRANSIENT_ERRORS = ['StepFunctions.SdkClientException', 'StepFunctions.AWSStepFunctionsException'];

/**
 * Catch target of a workflow's validation: the original event and the reason go to the dead-letter queue, then the
 * execution fails. Creates `<prefix>DeadLetter` and `<prefix>Rejected` in `scope`; catch with `resultPath: '$.error'`.
 */
export function deadLetterState(scope: Construct, prefix: string, queue: sqs.IQueue): sfn.IChainable {
  const send = new tasks.SqsSendMessage(scope, `${prefix}DeadLetter`, {
    queue,
    messageBody: sfn.TaskInput.fromObject({
      reason: sfn.JsonPath.stringAt('$.error.Cause'),
      error: sfn.JsonPath.stringAt('$.error.Error'),
      stateMachine: sfn.JsonPath.stringAt('$$.StateMachine.Name'),
      execution: sfn.JsonPath.stringAt('$$.Execution.Id'),
      event: sfn.JsonPath.objectAt('$$.Execution.Input'),
    }),
    resultPath: sfn.JsonPath.DISCARD,
  });
  return send.next(new sfn.Fail(scope, `${prefix}Rejected`, { error: 'EventRejected', causePath: '$.error.Cause' }));
}

export interface PublishAlertsProps {
  /** The alerts topic; each owner's subscription filters on the `owner` message attribute. */
  readonly topic: sns.ITopic;
  /** Path of the PublishableAlert list (`{ subject, message, attributes }` each) in the state. */
  readonly itemsPath: string;
  /** Construct id of the Publish task inside the Map. */
  readonly publishId: string;
}

/** A Map (construct id `id`) publishing each alert of `itemsPath` natively to SNS with its filter attributes. */
export function publishAlerts(scope: Construct, id: string, props: PublishAlertsProps): sfn.Map {
  const publish = new tasks.SnsPublish(scope, props.publishId, {
    topic: props.topic,
    subject: sfn.JsonPath.stringAt('$.subject'),
    message: sfn.TaskInput.fromJsonPathAt('$.message'),
    messageAttributes: Object.fromEntries(ALERT_ATTRIBUTES.map((name) => [name, { value: sfn.JsonPath.stringAt(`$.attributes.${name}`) }])),
    resultPath: sfn.JsonPath.DISCARD,
  });
  publish.addRetry({ errors: SNS_TRANSIENT_ERRORS, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });
  return new sfn.Map(scope, id, { itemsPath: props.itemsPath, maxConcurrency: 10, resultPath: sfn.JsonPath.DISCARD }).itemProcessor(publish);
}

export interface StartRebuildsProps {
  /** rebuild-image: each item starts one execution of it. */
  readonly stateMachine: sfn.IStateMachine;
  /** Path of the `{ name, input }` list in the state. */
  readonly itemsPath: string;
  /** Construct id of the StartExecution task inside the Map. */
  readonly startId: string;
  /** Construct id of the Pass state that a duplicate start ends in. */
  readonly alreadyStartedId: string;
}

/** A Map (construct id `id`) starting one rebuild-image execution per item, by its deterministic name. */
export function startRebuilds(scope: Construct, id: string, props: StartRebuildsProps): sfn.Map {
  const start = new tasks.StepFunctionsStartExecution(scope, props.startId, {
    stateMachine: props.stateMachine,
    name: sfn.JsonPath.stringAt('$.name'),
    input: sfn.TaskInput.fromJsonPathAt('$.input'),
    associateWithParent: false,
    resultPath: sfn.JsonPath.DISCARD,
  });
  // The deterministic name makes a duplicate start fail with ExecutionAlreadyExists: that is the idempotency.
  start.addCatch(new sfn.Pass(scope, props.alreadyStartedId), { errors: ['StepFunctions.ExecutionAlreadyExistsException'] });
  start.addRetry({ errors: START_EXECUTION_TRANSIENT_ERRORS, maxAttempts: 4, jitterStrategy: sfn.JitterType.FULL });
  return new sfn.Map(scope, id, { itemsPath: props.itemsPath, maxConcurrency: 10, resultPath: sfn.JsonPath.DISCARD }).itemProcessor(start);
}
