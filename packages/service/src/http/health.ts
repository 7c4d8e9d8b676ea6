import { keyrings } from '../schema.ts';
import type { Endpoint } from './env.ts';
import { json, noStore } from './responses.ts';

/**
 * Liveness and readiness for whatever runs the replicas (a load balancer, Kubernetes, systemd).
 * Neither is advertised in the discovery documents: they are for the operator, not for agents.
 */
export const healthPaths = { liveness: '/healthz', readiness: '/readyz' } as const;

/** The key the readiness probe looks up: no keyring ever has it, so the read finds nothing and changes nothing. */
const PROBE_KEY = 'readyz-probe';

/** Liveness: the process answers requests. Touches nothing else, so a database outage never restarts a replica. */
export const getHealthz: Endpoint = async () => json({ status: 'ok' }, 200, noStore);

/**
 * Readiness: one primary-key read from the store, and the store's own `ping` of what else it
 * depends on (Redis). 200 when both answer; 503 with Retry-After when either does not (unreachable,
 * timed out, closed), so that a load balancer sends traffic to another replica. The reason goes to
 * the log, never into the answer.
 */
export const getReadyz: Endpoint = async (_request, { ctx }) => {
  try {
    await ctx.store.get(keyrings, PROBE_KEY);
    await ctx.store.ping?.();
    return json({ status: 'ok', store: ctx.store.kind }, 200, noStore);
  } catch (error) {
    ctx.logger.warn('readiness check failed', { error: error instanceof Error ? error.message : String(error) });
    return json({ status: 'unavailable', store: ctx.store.kind, retry_after: 1 }, 503, { ...noStore, 'Retry-After': '1' });
  }
};
