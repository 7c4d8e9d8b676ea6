import type { Registry } from 'prom-client';
import { ConfigError } from './config-error.ts';

/**
 * Prometheus collectors for the service's and the provider's metrics. prom-client is an optional peer
 * dependency, imported only when metrics are turned on.
 */

/**
 * A prom-client `Registry`, as far as authmd's declarations name it: they must type-check in an app
 * that never installed prom-client. Any prom-client Registry is one; one given in `MetricsOptions`
 * is used as the Registry it is.
 */
export interface MetricsRegistry {
  /** The exposition, for a scrape. */
  metrics(): Promise<string>;
  /** Its Content-Type header. */
  readonly contentType: string;
  getSingleMetric(name: string): unknown;
}

/** The `metrics` option: `true` for a new registry, or the host's registry and a name prefix. */
export interface MetricsOptions {
  /** The prom-client registry to register the collectors in. Default: a new one (`service.metrics`, `provider.metrics`). */
  registry?: MetricsRegistry;
  /** Prefix of every metric name. Default `authmd_`. */
  prefix?: string;
}

type PromClient = typeof import('prom-client');

/**
 * prom-client, imported only now that metrics are on; an optional peer dependency, so a missing one
 * is a ConfigError saying what to install. Shared by the service's and the agent provider's metrics.
 */
async function loadPromClient(what: string): Promise<PromClient> {
  let loaded: PromClient & { default?: PromClient };
  try {
    loaded = await import('prom-client');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new ConfigError(`${what}: metrics need prom-client, which is not installed; npm install prom-client (15 or later), or leave metrics off`);
    }
    throw error;
  }
  return loaded.Registry ? loaded : loaded.default!;
}

const METRIC_NAME_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Makes collectors in one registry, each named with the prefix. A name already in the registry
 * (another service object sharing it, say) gives back that collector: registering it twice would throw.
 */
export interface Collectors {
  registry: MetricsRegistry;
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): CounterLike<L>;
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): HistogramLike<L>;
  /** A gauge whose value `read` gives at each scrape (it keeps its last value when `read` throws). */
  gauge(name: string, help: string, read: () => Promise<number>): void;
}

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** A prom-client Counter, as far as the collectors' users need it. */
export interface CounterLike<L extends string> {
  inc(labels: Labels<L>, value?: number): void;
}

/** A prom-client Histogram, as far as the collectors' users need it. */
export interface HistogramLike<L extends string> {
  observe(labels: Labels<L>, value: number): void;
}

/** The collectors of a `metrics` option (`true` or an object), with prom-client loaded; `what` names the option in errors. */
export async function metricCollectors(option: true | MetricsOptions, what: string): Promise<Collectors> {
  const given = option === true ? {} : option;
  const prefix = given.prefix ?? 'authmd_';
  if (!METRIC_NAME_PREFIX.test(prefix)) throw new ConfigError(`${what}.prefix: "${prefix}" is not a valid start of a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)`);
  const prom = await loadPromClient(what);
  const registry = (given.registry as Registry | undefined) ?? new prom.Registry();
  const registers = [registry];
  const existing = <M>(name: string, make: (name: string) => M): M => (registry.getSingleMetric(prefix + name) as M | undefined) ?? make(prefix + name);
  return {
    registry,
    counter: (name, help, labelNames) => existing(name, (full) => new prom.Counter({ name: full, help, labelNames, registers })),
    histogram: (name, help, labelNames, buckets) => existing(name, (full) => new prom.Histogram({ name: full, help, labelNames, buckets, registers })),
    gauge: (name, help, read) => {
      existing(
        name,
        (full) =>
          new prom.Gauge({
            name: full,
            help,
            registers,
            async collect() {
              try {
                this.set(await read());
              } catch {
                // The store is closed or unreachable: the scrape keeps the last value rather than failing.
              }
            },
          }),
      );
    },
  };
}
