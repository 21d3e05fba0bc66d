import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { AlertKind } from '../domain/alert';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { MetricDimension, PatchlineMetric } from '../domain/patchline-metric';
import { AlertClaimReceiptSchema, AlertDedupStore } from '../store/finding-store';
import { PowertoolsMetricsSink } from '../aws/powertools-metrics';
import { traced } from '../aws/traced-client';
import type { HandlerDependencies } from './dependencies';
import { publishingMetrics, requireEnv } from './dependencies';
import { MissingAlertDedupError } from './publishable-alerts';

const logger = new Logger({ serviceName: 'patchline-release-alert-claim' });

/**
 * An undelivered alert that held no dedup claim (scan-completed's STILL_VULNERABLE): publishAlerts passes its kind
 * (the `kind` message attribute) so that it is counted like a claimed one.
 */
export const UnclaimedAlertSchema = z.strictObject({
  claimed: z.literal(false),
  kind: z.enum(AlertKind),
});
export type UnclaimedAlert = z.infer<typeof UnclaimedAlertSchema>;

export interface ReleaseAlertClaimResult {
  /**
   * True when the claim was deleted; false when it had gone already, a newer claim holds the record, or the alert held
   * no claim.
   */
  readonly released: boolean;
}

/**
 * The Catch of an alert's Publish (publishAlerts): gives back the dedup claim of an alert SNS did not take, so the
 * next event for that finding alerts again instead of being suppressed for the whole dedup window. Idempotent.
 * The input is the alert's `claim` (AlertClaimReceipt), as collectAlerts wrote it, or, for an alert that held no claim,
 * `{ claimed: false, kind }` (UnclaimedAlert).
 *
 * Counts AlertsUndelivered by kind: collectAlerts counted every alert in AlertsSent, so AlertsSent − AlertsUndelivered
 * is what reached SNS. A claimed alert counts only when the release deleted its claim: the delete happens once, so a
 * retried invocation does not count it twice. An unclaimed alert has nothing to delete: it is counted, nothing else
 * (the state machine retries an invocation that failed, and this one fails only before counting; only a Lambda service
 * error after a completed invocation, whose retry runs it again, could count it twice).
 */
export function makeReleaseAlertClaimHandler(deps: Pick<HandlerDependencies, 'alertDedup' | 'metrics'>): (event: unknown) => Promise<ReleaseAlertClaimResult> {
  return async (event) => {
    if (event !== null && typeof event === 'object' && 'claimed' in event) {
      const unclaimed = UnclaimedAlertSchema.safeParse(event);
      if (!unclaimed.success) throw new InvalidEventError('unclaimed alert', describeIssues(unclaimed.error, event), { cause: unclaimed.error });
      deps.metrics?.count(PatchlineMetric.ALERTS_UNDELIVERED, 1, { [MetricDimension.KIND]: unclaimed.data.kind });
      logger.info('undelivered alert without a claim counted', { kind: unclaimed.data.kind });
      return { released: false };
    }
    const parsed = AlertClaimReceiptSchema.safeParse(event);
    if (!parsed.success) throw new InvalidEventError('alert claim', describeIssues(parsed.error, event), { cause: parsed.error });
    if (!deps.alertDedup) throw new MissingAlertDedupError();
    const released = await deps.alertDedup.release(parsed.data);
    if (released) deps.metrics?.count(PatchlineMetric.ALERTS_UNDELIVERED, 1, { [MetricDimension.KIND]: parsed.data.kind });
    logger.info('alert claim given back', { ...parsed.data, released });
    return { released };
  };
}

let environmentDependencies: Pick<HandlerDependencies, 'alertDedup' | 'metrics'> | undefined;

/**
 * Only the dedup store and the metrics sink: this function may do nothing but delete dedup records (TABLE_NAME,
 * ALERT_DEDUP_SECONDS); its metrics are EMF on stdout, which needs no permission.
 */
function dependenciesFromEnvironment(): Pick<HandlerDependencies, 'alertDedup' | 'metrics'> {
  environmentDependencies ??= {
    alertDedup: new AlertDedupStore({ client: traced(new DynamoDBClient({})), tableName: requireEnv('TABLE_NAME'), windowSeconds: Number(requireEnv('ALERT_DEDUP_SECONDS')) }),
    metrics: new PowertoolsMetricsSink(),
  };
  return environmentDependencies;
}

export const handler = (event: unknown): Promise<ReleaseAlertClaimResult> => {
  const deps = dependenciesFromEnvironment();
  return publishingMetrics(deps, makeReleaseAlertClaimHandler(deps))(event);
};
