import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore } from '@authmd/core/postgres';
import { createMemoryStore, type Store } from '@authmd/core/store';
import { withRedis } from '@authmd/service/redis';
import { accessToken, callApi, postForm, postJson, startService, type RunningService } from '../support/harness.ts';
import { createTestDatabase, type TestDatabase } from '../../../../test-support/postgres.ts';
import { dropPrefix, keysUnder, REDIS_URL, uniquePrefix } from '../../../../test-support/redis.ts';
import { freePort } from '../../../../test-support/free-port.ts';

/** Two services (replicas) whose stores are wrapped by withRedis on one Redis and one prefix. */

const LIMITS = { anonymous: { perIp: 3, perService: 1000 }, service_auth: { perIp: 3, perService: 1000 } };

let prefix: string;
let db: TestDatabase | undefined;
let running: RunningService[] = [];
let extraStores: Store[] = [];
afterEach(async () => {
  for (const r of running.reverse()) await r.close();
  running = [];
  for (const s of extraStores) await s.close();
  extraStores = [];
  await db?.drop();
  db = undefined;
  await dropPrefix(prefix);
});

async function twoServices(inner: () => Store, tokenCacheSeconds?: number): Promise<[RunningService, RunningService]> {
  const store = () => withRedis(inner(), { url: REDIS_URL, prefix, echoTimeoutMs: 1000 });
  const a = await startService({ store: store(), rateLimits: LIMITS, ...(tokenCacheSeconds ? { tokenCacheSeconds } : {}) });
  running.push(a);
  const b = await startService({ store: store(), issuer: a.base, rateLimits: LIMITS, ...(tokenCacheSeconds ? { tokenCacheSeconds } : {}) });
  running.push(b);
  return [a, b];
}

async function registrations(a: RunningService, b: RunningService): Promise<number[]> {
  const statuses: number[] = [];
  for (const base of [a.base, b.base, a.base, b.base, a.base]) statuses.push((await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status);
  return statuses;
}

async function query<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: db!.url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('services on withRedis', () => {
  it('count the registration rate limit once across two replicas on one PostgreSQL database, in Redis', async () => {
    prefix = uniquePrefix();
    db = await createTestDatabase();
    const [a, b] = await twoServices(() => createPostgresStore({ connectionString: db!.url }));
    // Three from this address in the hour, wherever they landed; the fourth and fifth are refused on either replica.
    expect(await registrations(a, b)).toEqual([200, 200, 200, 429, 429]);
    // Counted in Redis, not in the database.
    expect((await keysUnder(`${prefix}counter:`)).length).toBeGreaterThan(0);
    const [row] = await query<{ n: number }>("SELECT CASE WHEN to_regclass('authmd_counters') IS NULL THEN 0 ELSE (SELECT count(*)::int FROM authmd_counters) END AS n");
    expect(row?.n).toBe(0);
    const ready = await fetch(`${b.base}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ok', store: 'postgres+redis' });
  });

  it('are not ready while their Redis does not answer, though the database does', async () => {
    const port = await freePort(); // nothing listens there
    const store = withRedis(createMemoryStore(), { url: `redis://127.0.0.1:${port}`, prefix: uniquePrefix(), commandTimeoutMs: 300 });
    const service = await startService({ store });
    running.push(service);
    const ready = await fetch(`${service.base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('retry-after')).toBe('1');
    expect(await ready.json()).toMatchObject({ status: 'unavailable', store: 'memory+redis' });
    // The registrations it cannot count are refused the same way.
    expect((await postJson(`${service.base}/agent/identity`, { type: 'anonymous' })).status).toBe(503);
    expect((await fetch(`${service.base}/healthz`)).status).toBe(200);
  });

  it('count it once across two replicas that share nothing but Redis', async () => {
    prefix = uniquePrefix();
    const [a, b] = await twoServices(() => createMemoryStore());
    expect(await registrations(a, b)).toEqual([200, 200, 200, 429, 429]);
  });

  it('refuse on B, at the very next request, a token revoked on A: the announcement goes through Redis', async () => {
    prefix = uniquePrefix();
    db = await createTestDatabase();
    const [a, b] = await twoServices(() => createPostgresStore({ connectionString: db!.url }), 60);
    // A third process that shares only Redis with them hears the announcement too.
    const bystander = withRedis(createMemoryStore(), { url: REDIS_URL, prefix });
    extraStores.push(bystander);
    const heard: (string | undefined)[] = [];
    const subscription = bystander.subscribe!('tokens', (message) => heard.push(message));
    const started = performance.now();
    while (!subscription.live) {
      if (performance.now() - started > 5000) throw new Error('the bystander never subscribed');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    const { token } = await accessToken(a.base);
    expect((await callApi(b.base, token)).status).toBe(200); // now cached on B for 60 s
    expect((await postForm(`${a.base}/oauth2/revoke`, { token, token_type_hint: 'access_token' })).status).toBe(200);
    expect((await callApi(b.base, token)).status).toBe(401);
    expect(heard.filter((m) => m !== undefined)).toEqual(['revoked']);
  });
});
