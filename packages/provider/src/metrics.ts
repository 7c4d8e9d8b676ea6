import { collector, resolveMetrics, type MetricsOptions } from '@authmd/service';
import type { Store } from '@authmd/service/store';
import type { Counter, Gauge, Registry } from 'prom-client';
import { outbox } from './schema.ts';

/** How one delivery attempt of a revocation SET ended (a row another worker had is not counted). */
export type DeliveryOutcome = 'delivered' | 'retrying' | 'failed';

/** What the provider counts: off by default (`noProviderMetrics`), and then prom-client is never imported. */
export interface ProviderMetrics {
  delivery(outcome: DeliveryOutcome): void;
}

export const noProviderMetrics: ProviderMetrics = { delivery: () => {} };

/**
 * The provider's collectors: SET delivery attempts by outcome, and the outbox backlog, read from the
 * store at each scrape (so every replica reports the one shared backlog).
 */
export async function createProviderMetrics(option: true | MetricsOptions, store: Store): Promise<{ metrics: ProviderMetrics; registry: Registry }> {
  const { prom, registry, prefix } = await resolveMetrics(option, 'metrics');
  const registers = [registry];
  const deliveries: Counter<'outcome'> = collector(
    registry,
    `${prefix}set_deliveries_total`,
    () => new prom.Counter({ name: `${prefix}set_deliveries_total`, help: 'Revocation SET delivery attempts by outcome: delivered, retrying, failed (for good).', labelNames: ['outcome'], registers }),
  );
  collector<Gauge>(
    registry,
    `${prefix}set_outbox_backlog`,
    () =>
      new prom.Gauge({
        name: `${prefix}set_outbox_backlog`,
        help: 'Revocation SETs queued in the outbox and not yet delivered nor failed for good.',
        registers,
        async collect() {
          try {
            this.set((await store.findMany(outbox, 'status', 'pending')).length);
          } catch {
            // The store is closed or unreachable: the scrape keeps the last value rather than failing.
          }
        },
      }),
  );
  return { metrics: { delivery: (outcome) => deliveries.inc({ outcome }) }, registry };
}
