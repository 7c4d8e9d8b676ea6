export { ConfigError } from './config-error.ts';
export { jsonLogger, silentLogger, toLogger, type Logger, type PinoLikeLogger } from './logger.ts';
export { metricCollectors, type Collectors, type CounterLike, type HistogramLike, type MetricsOptions, type MetricsRegistry } from './metrics.ts';
export { collectBody, declaredTooLarge } from './body.ts';
