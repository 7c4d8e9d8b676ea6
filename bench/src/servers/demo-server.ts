import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startDemo, type DemoOptions } from '../../../examples/demo/src/start.ts';
import { routeKey, type ServerMicros } from '../growth/server-timing.ts';
import { BENCH_ADMIN_TOKEN } from './admin-token.ts';

/**
 * The demo exactly as `npm start` builds it (service routes, notes API, home page); only the logger
 * is silent and the rate limits are off. By default on a fresh SQLite file (WAL) in a temporary
 * directory. The bench sets, for the replica scenarios (run.ts, replicas.ts):
 *
 * - BENCH_DEMO_DATABASE_URL: PostgreSQL instead of SQLite (AUTHMD_DATABASE_URL of `npm start`);
 * - BENCH_DEMO_PUBLIC_URL and BENCH_DEMO_KEY_ENCRYPTION_KEY: what replicas of one service share
 *   (AUTHMD_PUBLIC_URL, AUTHMD_KEY_ENCRYPTION_KEY);
 * - BENCH_DEMO_PORT: the port to listen on (default 0, any free one), for the replica whose address
 *   is the public URL;
 * - BENCH_DEMO_REDIS_URL: rate-limit counters and invalidation in Redis (AUTHMD_REDIS_URL), for the
 *   PostgreSQL + Redis columns;
 * - BENCH_DEMO_TRUST_PROVIDER: a provider's trust entry (JSON) for the ID-JAG registration scenario
 *   (id-jags.ts), whose provider runs in the bench process;
 * - BENCH_DEMO_DATA_DIR: this data directory (its SQLite file and key-encryption key) instead of a
 *   temporary one, kept when the child stops, for the growth scenario (growth/), which fills the
 *   store between two runs of the demo;
 * - BENCH_DEMO_MAINTENANCE_SECONDS: how often the service purges expired rows (default 60 s), for
 *   the growth scenario's purge run;
 * - BENCH_DEMO_SERVER_TIMING=1: each request timed in this process, by route (growth/server-timing.ts),
 *   for the growth scenario.
 *
 * The child counts the HTTP requests it receives and, on PostgreSQL, the queries it sends (every `pg`
 * client query, by the first words of its SQL), and answers `{ type: 'stats' }` on its IPC channel
 * with both (and the request times, when it keeps them), so that queries per request are counted
 * where both happen.
 */
const env = process.env;
const dataDir = env.BENCH_DEMO_DATA_DIR || mkdtempSync(join(tmpdir(), 'authmd-bench-'));
// The load generator registers thousands of times a second from one address: no rate limits here.
const unlimited = { perIp: Number.MAX_SAFE_INTEGER, perService: Number.MAX_SAFE_INTEGER };

const queries = new Map<string, number>();
if (env.BENCH_DEMO_DATABASE_URL) {
  // Counting in the child, not in the store: one Map increment per query, no product code involved.
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0];
    const text = typeof first === 'string' ? first : first && typeof first === 'object' && 'text' in first ? String((first as { text: unknown }).text) : '?';
    const shape = text.replace(/\s+/g, ' ').trim().split(' ').slice(0, 4).join(' ').replace(/\(.*$/, '').slice(0, 60);
    queries.set(shape, (queries.get(shape) ?? 0) + 1);
    return query.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

/** The PostgreSQL + Redis columns (issue 11): rate-limit counters and invalidation in Redis (AUTHMD_REDIS_URL of `npm start`). */
function redisOption(url: string | undefined): Partial<DemoOptions> {
  return url ? { redisUrl: url } : {};
}

// withRedis imports `redis` on first use, while the store is opening its first PostgreSQL connection:
// on a loaded machine the import can hold the event loop past pg's 2 s connect timeout and the start
// fails (seen here). Importing it first keeps that start-up effect out of the bench.
if (env.BENCH_DEMO_REDIS_URL) await import('redis');

const demo = await startDemo({
  port: Number(env.BENCH_DEMO_PORT ?? 0),
  dataDir,
  rateLimits: { anonymous: unlimited, service_auth: unlimited, identity_assertion: unlimited },
  // The growth scenario times the operator's search too (issue 15).
  admin: { apiTokens: [{ operator: 'bench', token: BENCH_ADMIN_TOKEN }] },
  ...(env.BENCH_DEMO_TRUST_PROVIDER ? { trustProvider: JSON.parse(env.BENCH_DEMO_TRUST_PROVIDER) } : {}),
  ...(env.BENCH_DEMO_DATABASE_URL ? { databaseUrl: env.BENCH_DEMO_DATABASE_URL } : {}),
  ...(env.BENCH_DEMO_PUBLIC_URL ? { publicUrl: env.BENCH_DEMO_PUBLIC_URL } : {}),
  ...(env.BENCH_DEMO_KEY_ENCRYPTION_KEY ? { keyEncryptionKey: env.BENCH_DEMO_KEY_ENCRYPTION_KEY } : {}),
  ...redisOption(env.BENCH_DEMO_REDIS_URL),
  ...(env.BENCH_DEMO_MAINTENANCE_SECONDS ? { maintenanceIntervalSeconds: Number(env.BENCH_DEMO_MAINTENANCE_SECONDS) } : {}),
});
// The address this process listens on, not `demo.url`: with a shared public URL (replica A's), B's own differs.
process.stdout.write(`listening http://127.0.0.1:${demo.port}\n`);

let requests = 0;
demo.server.prependListener('request', () => void (requests += 1));
// BENCH_DEMO_SERVER_TIMING=1 (the growth section): each request's own time in this process, from its
// headers' arrival to its answer's end, in µs by route, so that what the service spends can be told
// apart from what its client measured around it.
const serverMicros: ServerMicros | undefined = env.BENCH_DEMO_SERVER_TIMING === '1' ? {} : undefined;
if (serverMicros) {
  demo.server.prependListener('request', (request: IncomingMessage, response: ServerResponse) => {
    const arrived = performance.now();
    // Timed as the answer is ended, before it is written: a time taken after the write (or at 'finish',
    // a turn of the event loop later) can count a preemption during which the client already has it.
    const end = response.end;
    response.end = function (this: ServerResponse, ...args: unknown[]) {
      (serverMicros[routeKey(request.method, request.url)] ??= []).push(Math.round((performance.now() - arrived) * 1000));
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
  });
}
process.on('message', (message: unknown) => {
  if (message && typeof message === 'object' && (message as { type?: unknown }).type === 'stats') {
    process.send?.({ type: 'stats', requests, queries: Object.fromEntries(queries), ...(serverMicros ? { serverMicros } : {}) });
  }
});

process.on('SIGTERM', () => {
  demo
    .close()
    .finally(() => env.BENCH_DEMO_DATA_DIR || rmSync(dataDir, { recursive: true, force: true }))
    .then(() => process.exit(0), () => process.exit(1));
});
