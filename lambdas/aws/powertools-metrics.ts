import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { PATCHLINE_METRICS_NAMESPACE, PatchlineMetric } from '../domain/patchline-metric';
import type { MetricsSink } from '../handlers/dependencies';

interface Datum {
  readonly name: PatchlineMetric;
  readonly unit: (typeof MetricUnit)[keyof typeof MetricUnit];
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/**
 * The Lambda's metrics sink: CloudWatch embedded metric format (EMF) on stdout through Powertools Metrics, in the
 * `Patchline` namespace, with `service` (POWERTOOLS_SERVICE_NAME) on every metric.
 *
 * Powertools keeps one dimension set per flush, and the same metric goes out with different dimensions in one
 * invocation (OpenFindings per owner and severity), so data are buffered here and published one EMF document per
 * dimension set when the invocation ends (`flush`, called by publishingMetrics: no middy middleware needed).
 */
export class PowertoolsMetricsSink implements MetricsSink {
  private readonly metrics: Metrics;
  private buffer: Datum[] = [];

  public constructor(options: { serviceName?: string; metrics?: Metrics } = {}) {
    this.metrics = options.metrics ?? new Metrics({ namespace: PATCHLINE_METRICS_NAMESPACE, ...(options.serviceName && { serviceName: options.serviceName }) });
  }

  public count(name: PatchlineMetric, value: number, dimensions: Readonly<Record<string, string>> = {}): void {
    this.buffer.push({ name, unit: MetricUnit.Count, value, dimensions });
  }

  public seconds(name: PatchlineMetric, value: number, dimensions: Readonly<Record<string, string>> = {}): void {
    this.buffer.push({ name, unit: MetricUnit.Seconds, value, dimensions });
  }

  public flush(): void {
    const data = this.buffer;
    this.buffer = [];
    const groups = new Map<string, Datum[]>();
    for (const datum of data) {
      const key = JSON.stringify(Object.entries(datum.dimensions).sort(([a], [b]) => a.localeCompare(b)));
      groups.set(key, [...(groups.get(key) ?? []), datum]);
    }
    for (const group of groups.values()) {
      this.metrics.addDimensions({ ...group[0].dimensions });
      for (const datum of group) this.metrics.addMetric(datum.name, datum.unit, datum.value);
      this.metrics.publishStoredMetrics();
    }
  }
}
