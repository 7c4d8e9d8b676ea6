import { metricCollectors, type MetricsOptions, type MetricsRegistry } from '@authmd/core';
import { StoreUnavailableError } from '@authmd/core/store';
import { ProtocolError } from '@authmd/protocol';

/**
 * Prometheus metrics (docs/deployment.md, "Metrics and tracing"): off by default, and then nothing
 * but the no-op `noMetrics` below is on the request path and prom-client is never imported. Label
 * values are bounded sets only (route templates, methods, error codes, option names), never an id,
 * an email, an address or a raw path.
 */

/** The registration methods counted: `/agent/identity`'s types, and v0.1's `POST /agent/auth` forms. */
export type RegistrationMethod = 'anonymous' | 'service_auth' | 'identity_assertion' | 'v0.1_anonymous' | 'v0.1_id_jag' | 'v0.1_verified_email';

/** The exchanges counted: the jwt-bearer grant (own assertion or ID-JAG), v0.7's claim grant, and a refresh. */
export type ExchangeGrant = 'jwt_bearer' | 'id_jag' | 'claim' | 'refresh';

/** How a claim ceremony's step ended: bound, denied, a wrong code, or a closed attempt. */
export type ClaimOutcome = 'confirmed' | 'denied' | 'wrong_code' | 'too_many_attempts';

/** What the service counts. Every call happens once the work it counts has settled (committed). */
export interface ServiceMetrics {
  /** One request, once answered: its route template (or `unknown`), method, status, duration, and a refusal's error code. */
  request(route: string, method: string, status: number, seconds: number, error: string | undefined): void;
  registration(method: RegistrationMethod, outcome: string): void;
  exchange(grant: ExchangeGrant, outcome: string): void;
  claim(outcome: ClaimOutcome): void;
  /** A rate limit refused a request; `limit` is the option that sets it. */
  rateLimited(limit: string): void;
}

const nothing = (): void => {};

/** Metrics off: nothing is counted, nothing is imported. */
export const noMetrics: ServiceMetrics = { request: nothing, registration: nothing, exchange: nothing, claim: nothing, rateLimited: nothing };

/**
 * Counts what `work` came to once it settled: `ok`, or the refusal's error code (`server_error` for
 * anything unexpected). The engine's functions return after their transaction committed, so an
 * outcome is counted only once it is true.
 */
export async function counted<L, T>(count: (label: L, outcome: string) => void, label: L, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    count(label, errorCode(error));
    throw error;
  }
  count(label, 'ok');
  return result;
}

/** The error code an exception is answered with. */
export function errorCode(error: unknown): string {
  if (error instanceof ProtocolError) return error.code;
  if (error instanceof StoreUnavailableError) return 'temporarily_unavailable';
  return 'server_error';
}

/** The service's collectors, in `registry`. */
export async function createMetrics(option: true | MetricsOptions): Promise<{ metrics: ServiceMetrics; registry: MetricsRegistry }> {
  const { registry, counter, histogram } = await metricCollectors(option, 'metrics');
  const registrations = counter('registrations_total', 'Agent registrations by method and outcome (ok, or the refusal\'s error code).', ['method', 'outcome']);
  const exchanges = counter('token_exchanges_total', 'Token exchanges and refreshes by grant and outcome (ok, or the refusal\'s error code).', ['grant', 'outcome']);
  const claims = counter('claims_total', 'Claim ceremony outcomes: confirmed, denied, wrong_code, too_many_attempts.', ['outcome']);
  const refusals = counter('refusals_total', 'Requests refused (4xx and 5xx) by route and error code.', ['route', 'code']);
  const rateLimits = counter('rate_limit_hits_total', 'Requests a rate limit refused, by the option that sets the limit.', ['limit']);
  const duration = histogram(
    'http_request_duration_seconds',
    'Time from the request reaching the service handler to its answer, by route, method and status class.',
    ['route', 'method', 'status_class'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  const metrics: ServiceMetrics = {
    request(route, method, status, seconds, error) {
      duration.observe({ route, method, status_class: `${Math.floor(status / 100)}xx` }, seconds);
      if (status >= 400) refusals.inc({ route, code: error ?? (status >= 500 ? 'server_error' : 'other') });
    },
    registration: (method, outcome) => registrations.inc({ method, outcome }),
    exchange: (grant, outcome) => exchanges.inc({ grant, outcome }),
    claim: (outcome) => claims.inc({ outcome }),
    rateLimited: (limit) => rateLimits.inc({ limit }),
  };
  return { metrics, registry };
}
