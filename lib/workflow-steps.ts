import { Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { PatchlineFunction } from './patchline-function';
import { grantAlertClaimRelease } from './table-access';

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

/** Construct id, in the stack, of the one release-alert-claim function every alert-publishing workflow shares. */
export const RELEASE_ALERT_CLAIM_FUNCTION_ID = 'ReleaseAlertClaimFunction';
/** Its handler file: the `service` dimension of its metrics is `patchline-<handler>` (the ops alarm on AlertsUndelivered). */
export const RELEASE_ALERT_CLAIM_HANDLER = 'release-alert-claim';

/** The error an execution ends with when one of its alerts was dead-lettered (see `failIfAlertsUndelivered`). */
export const ALERTS_UNDELIVERED_ERROR = 'AlertsUndelivered';

/** The output of a Map iteration whose alert was dead-lettered. */
const UNDELIVERED = 'UNDELIVERED';

/** Where the alert dedup claims live: an undelivered alert's claim is given back there. */
export interface AlertClaimsProps {
  /** The Patchline table (the `ALERT#` dedup records). */
  readonly table: dynamodb.ITableV2;
  /** The table's customer-managed key. */
  readonly tableKey: kms.IKey;
  /** The dedup window in seconds (config.alertDedupDays × 86,400), as the claiming handlers have it. */
  readonly dedupSeconds: number;
}

export interface PublishAlertsProps {
  /** The alerts topic; each owner's subscription filters on the `owner` message attribute. */
  readonly topic: sns.ITopic;
  /** Path of the PublishableAlert list (`{ subject, message, attributes, claim? }` each) in the state. */
  readonly itemsPath: string;
  /** Construct id of the Publish task inside the Map; the ids of its failure path are derived from it. */
  readonly publishId: string;
  /**
   * Receives each alert SNS still refused after the retries, with the reason, the execution and whether its claim was
   * given back: the message holds the Publish (`alert`) for an operator to replay.
   */
  readonly deadLetterQueue: sqs.IQueue;
  /** The dedup claims: an undelivered alert's claim is given back so that the next event alerts again. */
  readonly claims: AlertClaimsProps;
  /**
   * Where the Map writes `{ undelivered: boolean }` (true when an alert was dead-lettered), for `failIfAlertsUndelivered`.
   * @default - discarded: the dead-letter queue (and its alarm) alone reports an undelivered alert
   */
  readonly resultPath?: string;
}

/** The stack's release-alert-claim function, created by the first workflow that publishes alerts. */
function releaseAlertClaimFunction(scope: Construct, props: PublishAlertsProps): lambda.IFunction {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild(RELEASE_ALERT_CLAIM_FUNCTION_ID);
  if (existing) return existing as lambda.IFunction;
  const fn = new PatchlineFunction(stack, RELEASE_ALERT_CLAIM_FUNCTION_ID, {
    handler: RELEASE_ALERT_CLAIM_HANDLER,
    deadLetterQueue: props.deadLetterQueue,
    environment: { TABLE_NAME: props.claims.table.tableName, ALERT_DEDUP_SECONDS: String(props.claims.dedupSeconds) },
  });
  grantAlertClaimRelease(props.claims.table, props.claims.tableKey, fn);
  return fn;
}

/**
 * A Map (construct id `id`) publishing each alert of `itemsPath` natively to SNS with its filter attributes. An alert
 * SNS refuses after the retries is not lost: release-alert-claim gives its dedup claim back, if it holds one, and
 * counts it in AlertsUndelivered; it goes to the dead-letter queue with the reason; the other alerts are still
 * published, and the Map reports it in `resultPath`.
 */
export function publishAlerts(scope: Construct, id: string, props: PublishAlertsProps): sfn.Map {
  const seconds = props.claims.dedupSeconds;
  if (!Token.isUnresolved(seconds) && !(Number.isInteger(seconds) && seconds > 0)) {
    throw new Error(`publishAlerts claims.dedupSeconds must be a positive whole number of seconds (received ${seconds})`);
  }
  const publish = new tasks.SnsPublish(scope, props.publishId, {
    topic: props.topic,
    subject: sfn.JsonPath.stringAt('$.subject'),
    message: sfn.TaskInput.fromJsonPathAt('$.message'),
    messageAttributes: Object.fromEntries(ALERT_ATTRIBUTES.map((name) => [name, { value: sfn.JsonPath.stringAt(`$.attributes.${name}`) }])),
    resultPath: sfn.JsonPath.DISCARD,
  });
  publish.addRetry({ errors: SNS_TRANSIENT_ERRORS, maxAttempts: 6, jitterStrategy: sfn.JitterType.FULL });

  // An undelivered alert ends its iteration with UNDELIVERED (a delivered one with the alert): the Map's result says
  // whether any was dead-lettered without failing the Map, which would stop the other alerts' iterations.
  const undelivered = new sfn.Pass(scope, `${props.publishId}Undelivered`, { result: sfn.Result.fromString(UNDELIVERED) });
  const deadLetter = new tasks.SqsSendMessage(scope, `${props.publishId}DeadLetter`, {
    queue: props.deadLetterQueue,
    messageBody: sfn.TaskInput.fromObject({
      reason: sfn.JsonPath.format('the alert was not published to SNS after retries: {}', sfn.JsonPath.stringAt('$.error.Cause')),
      error: sfn.JsonPath.stringAt('$.error.Error'),
      stateMachine: sfn.JsonPath.stringAt('$$.StateMachine.Name'),
      execution: sfn.JsonPath.stringAt('$$.Execution.Id'),
      alert: { subject: sfn.JsonPath.stringAt('$.subject'), message: sfn.JsonPath.stringAt('$.message'), attributes: sfn.JsonPath.objectAt('$.attributes') },
      claimReleased: sfn.JsonPath.objectAt('$.claimRelease'),
    }),
    resultPath: sfn.JsonPath.DISCARD,
  });
  deadLetter.next(undelivered);

  const release = new tasks.LambdaInvoke(scope, `${props.publishId}ReleaseClaim`, {
    lambdaFunction: releaseAlertClaimFunction(scope, props),
    inputPath: '$.claim',
    payloadResponseOnly: true,
    resultSelector: { 'released.$': '$.released' },
    resultPath: '$.claimRelease',
    retryOnServiceExceptions: true,
  });
  release.addRetry({ errors: ['States.TaskFailed'], maxAttempts: 3, jitterStrategy: sfn.JitterType.FULL });
  // A claim that cannot be given back still leaves the alert in the dead-letter queue: nothing is dropped.
  release.addCatch(
    new sfn.Pass(scope, `${props.publishId}ClaimKept`, { parameters: { released: false, 'failure.$': '$.claimRelease.Cause' }, resultPath: '$.claimRelease' }).next(deadLetter),
    { errors: ['States.ALL'], resultPath: '$.claimRelease' },
  );
  release.next(deadLetter);
  // An alert without a claim (scan-completed's STILL_VULNERABLE) goes through release-alert-claim all the same, with
  // its kind: the function only counts it in AlertsUndelivered, so every undelivered alert is counted in one place.
  const unclaimed = new sfn.Pass(scope, `${props.publishId}Unclaimed`, {
    parameters: { claimed: false, 'kind.$': '$.attributes.kind' },
    resultPath: '$.claim',
  }).next(release);
  const giveBack = new sfn.Choice(scope, `${props.publishId}Claimed`).when(sfn.Condition.isPresent('$.claim'), release).otherwise(unclaimed);
  publish.addCatch(giveBack, { errors: ['States.ALL'], resultPath: '$.error' });

  return new sfn.Map(scope, id, {
    itemsPath: props.itemsPath,
    maxConcurrency: 10,
    ...(props.resultPath === undefined
      ? { resultPath: sfn.JsonPath.DISCARD }
      : { resultSelector: { 'undelivered.$': `States.ArrayContains($, '${UNDELIVERED}')` }, resultPath: props.resultPath }),
  }).itemProcessor(publish);
}

/**
 * The end of a workflow whose alerts were published with `resultPath`: a Choice (construct id `id`) that fails the
 * execution with AlertsUndelivered when one was dead-lettered (after everything else ran: rebuilds are started all the
 * same), and otherwise succeeds. Creates `AlertsUndelivered` and `AlertsDelivered` in `scope`.
 */
export function failIfAlertsUndelivered(scope: Construct, id: string, resultPaths: readonly string[]): sfn.Choice {
  const failed = new sfn.Fail(scope, 'AlertsUndelivered', {
    error: ALERTS_UNDELIVERED_ERROR,
    cause: 'an alert was not published after retries: it is in the dead-letter queue and its dedup claim was given back (see docs/runbook.md)',
  });
  const check = new sfn.Choice(scope, id);
  for (const path of resultPaths) check.when(sfn.Condition.booleanEquals(`${path}.undelivered`, true), failed);
  return check.otherwise(new sfn.Succeed(scope, 'AlertsDelivered'));
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
