import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { describeIssues, InvalidEventError } from '../domain/ecr-push-event';
import { MetricDimension, PatchlineMetric } from '../domain/patchline-metric';
import { AlertClaimReceiptSchema, AlertDedupStore } from '../store/finding-store';
import { PowertoolsMetricsSink } from '../aws/powertools-metrics';
import { traced } from '../aws/traced-client';
import type { HandlerDependencies } from './dependencies';
import { publishingMetrics, requireEnv } from './dependencies';
import { MissingAlertDedupError } from './publishable-alerts';

const logger = new Logger({ serviceName: 'patchline-release-alert-claim' });

export interface ReleaseAlertClaimResult {
  /** True when the claim was deleted; false when it had gone already or a newer claim holds the record. */
  readonly released: boolean;
}

/**
 * The Catch of an alert's Publish (publishAlerts): gives back the dedup claim of an alert SNS did not take, so the
 * next event for that finding alerts again instead of being suppressed for the whole dedup window. Idempotent.
 * The input is the alert's `claim` (AlertClaimReceipt), as collectAlerts wrote it.
 *
 * Counts AlertsUndelivered by kind when it gives the claim back: collectAlerts counted the alert in AlertsSent when it
 * claimed it, so AlertsSent − AlertsUndelivered is what reached SNS. Only a release that deleted the claim counts: the
 * delete happens once, so a retried invocation does not count the alert twice.
 */
export function makeReleaseAlertClaimHandler(deps: Pick<HandlerDependencies, 'alertDedup' | 'metrics'>): (event: unknown) => Promise<ReleaseAlertClaimResult> {
  return async (event) => {
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
