import { PatchlineMetric } from '../../lambdas/domain/patchline-metric';
import type { MetricsSink } from '../../lambdas/handlers/dependencies';

export interface RecordedMetric {
  readonly name: PatchlineMetric;
  readonly unit: 'Count' | 'Seconds';
  readonly value: number;
  readonly dimensions: Readonly<Record<string, string>>;
}

/**
 * The local runtime's metrics sink: it records, it never prints. The CLI's `--json` output is on stdout, where the
 * embedded metric format would land.
 */
export class LocalMetrics implements MetricsSink {
  public readonly recorded: RecordedMetric[] = [];
  /** Invocations whose metrics were published (publishingMetrics), for tests that check the flush happens. */
  public flushes = 0;

  public count(name: PatchlineMetric, value: number, dimensions: Readonly<Record<string, string>> = {}): void {
    this.recorded.push({ name, unit: 'Count', value, dimensions: { ...dimensions } });
  }

  public seconds(name: PatchlineMetric, value: number, dimensions: Readonly<Record<string, string>> = {}): void {
    this.recorded.push({ name, unit: 'Seconds', value, dimensions: { ...dimensions } });
  }

  public flush(): void {
    this.flushes += 1;
  }

  /** The recorded data points of one metric, in order. */
  public of(name: PatchlineMetric): RecordedMetric[] {
    return this.recorded.filter((m) => m.name === name);
  }

  /** Sum of a metric's values whose dimensions include `where`. */
  public total(name: PatchlineMetric, where: Readonly<Record<string, string>> = {}): number {
    return this.of(name)
      .filter((m) => Object.entries(where).every(([k, v]) => m.dimensions[k] === v))
      .reduce((sum, m) => sum + m.value, 0);
  }
}
