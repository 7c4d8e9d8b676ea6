import { metricCollectors, type MetricsOptions, type MetricsRegistry } from '@authmd/core';
import type { Store } from '@authmd/core/store';
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
export async function createProviderMetrics(option: true | MetricsOptions, store: Store): Promise<{ metrics: ProviderMetrics; registry: MetricsRegistry }> {
  const { registry, counter, gauge } = await metricCollectors(option, 'metrics');
  const deliveries = counter('set_deliveries_total', 'Revocation SET delivery attempts by outcome: delivered, retrying, failed (for good).', ['outcome']);
  gauge('set_outbox_backlog', 'Revocation SETs queued in the outbox and not yet delivered nor failed for good.', () => store.count(outbox, { status: 'pending' }));
  return { metrics: { delivery: (outcome) => deliveries.inc({ outcome }) }, registry };
}
