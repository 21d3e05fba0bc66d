import type { Alert } from '../domain/alert';
import { MetricDimension, PatchlineMetric } from '../domain/patchline-metric';
import { AlertClaim, AlertClaimReceipt, alertClaimReceipt } from '../store/finding-store';
import type { HandlerDependencies } from './dependencies';

/** One SNS Publish for the state machine: the attribute names are the subscription filter keys. */
export interface PublishableAlert {
  readonly subject: string;
  readonly message: string;
  readonly attributes: { owner: string; severity: string; image: string; kind: string; vulnerability: string };
  /**
   * The dedup claim this alert holds, when it was claimed: if the Publish fails for good, release-alert-claim gives it
   * back (AlertDedupStore.release) so that the next event alerts again. Not part of the Publish.
   */
  readonly claim?: AlertClaimReceipt;
}

/** An alert a handler wants sent; with a `claim`, only if no alert of that identity went out within the dedup window. */
export interface CandidateAlert {
  readonly alert: Alert;
  readonly claim?: AlertClaim;
}

export interface CollectedAlerts {
  /** The alerts to publish, in the order given. */
  readonly alerts: PublishableAlert[];
  /** Candidates not sent because their claim was taken (one was sent within the dedup window). */
  readonly suppressed: number;
}

export class MissingAlertDedupError extends Error {
  public readonly code = 'MISSING_ALERT_DEDUP';
  public constructor(options?: { cause?: unknown }) {
    super('an alert to deduplicate needs HandlerDependencies.alertDedup, which is not configured', options);
    this.name = 'MissingAlertDedupError';
  }
}

/** The Publish of an alert: people read the body; machine subscribers parse the JSON after the separator. */
export function publishableAlert(alert: Alert): PublishableAlert {
  return {
    subject: alert.subject,
    message: `${alert.body}\n\n--- JSON ---\n${alert.json}`,
    attributes: {
      owner: alert.messageAttributes.owner.StringValue,
      severity: alert.messageAttributes.severity.StringValue,
      image: alert.messageAttributes.image.StringValue,
      kind: alert.messageAttributes.kind.StringValue,
      vulnerability: alert.vulnerabilityId,
    },
  };
}

/**
 * Claims each candidate's dedup record (one at a time: two candidates may share an identity) and collects the alerts
 * to publish, each counted in AlertsSent by kind. Candidates without a claim are always sent.
 */
export async function collectAlerts(
  deps: Pick<HandlerDependencies, 'alertDedup' | 'metrics'>,
  candidates: Iterable<CandidateAlert>,
  now: Date,
): Promise<CollectedAlerts> {
  const list = [...candidates];
  const dedup = deps.alertDedup;
  // Refused before any claim is written or alert counted: a half-collected list would be lost with the error.
  if (!dedup && list.some((c) => c.claim !== undefined)) throw new MissingAlertDedupError();
  const alerts: PublishableAlert[] = [];
  let suppressed = 0;
  for (const { alert, claim } of list) {
    if (claim !== undefined) {
      if (!(await dedup!.claim(claim, now))) {
        suppressed += 1;
        continue;
      }
    }
    alerts.push(claim === undefined ? publishableAlert(alert) : { ...publishableAlert(alert), claim: alertClaimReceipt(claim, now) });
    deps.metrics?.count(PatchlineMetric.ALERTS_SENT, 1, { [MetricDimension.KIND]: alert.kind });
  }
  return { alerts, suppressed };
}
