import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore } from '@authmd/core/postgres';
import type { Store, Subscription } from '@authmd/core/store';
import { accessToken, callApi, exchange, postForm, registerAnonymous, startService, type HarnessOptions, type RunningService } from '../support/harness.ts';
import { createTestDatabase, type TestDatabase } from '../../../../test-support/postgres.ts';
import { expectRefused, presentIdJag, registerIdJag } from '../agent-verified/setup.ts';
import { providerPerTest } from '../agent-verified/test-provider.ts';
import { decodeJwt } from './helpers.ts';

/**
 * Issue 11 item 4: two replicas (two services, each with its own PostgreSQL pool and HTTP server) on
 * one database and one issuer, with a long token cache so that a stale cache would show. A
 * revocation made on A is refused by B on the very next request; a rotation on A is seen by B.
 */

const CACHE_MS = 60_000;
const startProvider = providerPerTest();

let db: TestDatabase | undefined;
let replicas: RunningService[] = [];
afterEach(async () => {
  for (const running of replicas.reverse()) await running.close();
  replicas = [];
  await db?.drop();
  db = undefined;
});

async function query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: db!.url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

interface Probe {
  /** When each message on `tokens` arrived at this replica (performance.now()). */
  received: number[];
  /** How many times the channel said "messages may have been missed" (connected or reconnected). */
  stale: number;
  subscription: Subscription;
}

/** Listens on a replica's store the way its caches do, to see when messages arrive there. */
function probe(running: RunningService): Probe {
  const p = { received: [] as number[], stale: 0 };
  const subscription = running.service.store.subscribe!('tokens', (message) => {
    if (message === undefined) p.stale += 1;
    else p.received.push(performance.now());
  });
  return Object.assign(p, { subscription });
}

async function until(what: string, condition: () => boolean | Promise<boolean>, withinMs = 3000): Promise<number> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > withinMs) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return performance.now() - started;
}

/** A and B on one fresh database, sharing A's URL as their issuer; both channels connected. */
async function twoReplicas(extra: HarnessOptions = {}): Promise<{ a: RunningService; b: RunningService; probeA: Probe; probeB: Probe }> {
  db = await createTestDatabase();
  // Each replica its own pools (and LISTEN connection). The wait for acknowledgements is raised from
  // 200 ms so that a loaded test machine does not turn a slow delivery into a failure.
  const store = () => createPostgresStore({ connectionString: db!.url, echoTimeoutMs: 1000 });
  const a = await startService({ ...extra, store: store(), tokenCacheSeconds: CACHE_MS / 1000 });
  replicas.push(a);
  const b = await startService({ ...extra, store: store(), issuer: a.base, tokenCacheSeconds: CACHE_MS / 1000 });
  replicas.push(b);
  const probeA = probe(a);
  const probeB = probe(b);
  await until('both LISTEN connections up', () => probeA.subscription.live && probeB.subscription.live);
  return { a, b, probeA, probeB };
}

/** A token issued on A and validated (so cached) on B. */
async function tokenCachedOnB(a: RunningService, b: RunningService): Promise<{ token: string; registration: Record<string, any> }> {
  const issued = await accessToken(a.base);
  expect((await callApi(b.base, issued.token)).status).toBe(200);
  return issued;
}

const windows: { what: string; ms: number }[] = [];
afterEach(() => {
  if (windows.length) console.info(`cross-replica invalidation (revoke/operator: B's receipt minus A's acknowledgement; jwks: B's JWKS updated after rotateKeys resolved; reconnect: time to LISTEN again): ${windows.map((w) => `${w.what} ${w.ms.toFixed(2)} ms`).join(', ')}`);
  windows.length = 0;
});

describe('cross-replica invalidation on PostgreSQL', () => {
  it('uses the token cache on B: a revocation written behind the services\' backs is not seen there, but is after an announced one', async () => {
    const { a, b } = await twoReplicas();
    const { token } = await tokenCachedOnB(a, b);
    // No broadcast: B answers from its cache, which proves the cache is on for the tests below.
    await query('UPDATE access_tokens SET revoked_at = 1');
    expect((await callApi(b.base, token)).status).toBe(200);
    expect((await callApi(a.base, token)).status).toBe(401); // A never cached it
    // Any announced revocation clears B's whole cache.
    const other = await tokenCachedOnB(a, b);
    expect((await postForm(`${a.base}/oauth2/revoke`, { token: other.token })).status).toBe(200);
    expect((await callApi(b.base, token)).status).toBe(401);
    expect((await callApi(b.base, other.token)).status).toBe(401);
  });

  it('refuses on B, at the very next request, an access token revoked on A through /oauth2/revoke', async () => {
    const { a, b, probeB } = await twoReplicas();
    for (let round = 0; round < 5; round++) {
      const { token } = await tokenCachedOnB(a, b);
      const before = probeB.received.length;
      const response = await postForm(`${a.base}/oauth2/revoke`, { token, token_type_hint: 'access_token' });
      const acknowledged = performance.now();
      expect(response.status).toBe(200);
      expect(probeB.received.length).toBeGreaterThan(before);
      windows.push({ what: `revoke#${round}`, ms: probeB.received[before]! - acknowledged });
      expect((await callApi(b.base, token)).status).toBe(401);
      expect((await callApi(a.base, token)).status).toBe(401);
    }
  });

  it('refuses on B, at the very next request, the tokens of a registration the operator revoked on A', async () => {
    const { a, b, probeB } = await twoReplicas();
    const { token, registration } = await tokenCachedOnB(a, b);
    const before = probeB.received.length;
    expect(await a.service.revokeRegistration(registration.id)).toBe(true);
    const acknowledged = performance.now();
    expect(probeB.received.length).toBeGreaterThan(before);
    windows.push({ what: 'operator', ms: probeB.received[before]! - acknowledged });
    expect((await callApi(b.base, token)).status).toBe(401);
    expect((await exchange(b.base, registration.identity.assertion)).status).toBe(400);
  });

  it('shows a key rotated on A in B\'s JWKS, signs with it on B, and exchanges on B an assertion signed by it on A', async () => {
    const { a, b } = await twoReplicas();
    const jwksOf = async (running: RunningService): Promise<string[]> =>
      ((await (await fetch(`${running.base}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const oldKid = decodeJwt((await registerAnonymous(b.base)).identity.assertion).header.kid as string;
    expect(await jwksOf(b)).toStrictEqual([oldKid]);

    await a.service.rotateKeys();
    const newKid = decodeJwt((await registerAnonymous(a.base)).identity.assertion).header.kid as string;
    expect(newKid).not.toBe(oldKid);
    const seenAfter = await until("B's JWKS lists A's new key", async () => (await jwksOf(b)).includes(newKid), 1000);
    windows.push({ what: 'jwks', ms: seenAfter });
    expect(await jwksOf(b)).toStrictEqual(expect.arrayContaining([newKid, oldKid]));
    // B signs with the new key without waiting for its maintenance.
    const onB = await registerAnonymous(b.base);
    expect(decodeJwt(onB.identity.assertion).header.kid).toBe(newKid);
    // An assertion A signed with its new key exchanges on B, and B's token works on A.
    const fromA = await registerAnonymous(a.base);
    const exchanged = await exchange(b.base, fromA.identity.assertion);
    expect(exchanged.status).toBe(200);
    expect((await callApi(a.base, ((await exchanged.json()) as { access_token: string }).access_token)).status).toBe(200);
  });

  it('drops on B a provider key set that A found changed: a key the provider withdrew stops verifying on B too', async () => {
    const provider = await startProvider();
    provider.jwksHeaders['cache-control'] = 'max-age=3600';
    const trust = { issuers: [provider.trustEntry()] as NonNullable<HarnessOptions['trust']>['issuers'], allowLoopback: true };
    const { a, b } = await twoReplicas({ trust });
    provider.attach({ audience: a.base, clock: a.clock });
    const jwksHeard: number[] = [];
    const listening = b.service.store.subscribe!('jwks', (message) => message !== undefined && jwksHeard.push(performance.now()));
    try {
      await until('listening for jwks', () => listening.live);
      // Both replicas verify with the provider's ES256 key, and keep its set for an hour.
      await registerIdJag(a.base, provider.mintIdJag());
      await registerIdJag(b.base, provider.mintIdJag({ sub: 'user-2', email: 'bea@example.com' }));
      const fetchesBefore = provider.hits('/jwks');

      // The provider withdraws that key (say it leaked) and signs with a new one.
      const withdrawn = provider.keys.ES256;
      const next = provider.addKey('ES256', 'es256-next');
      provider.published = [...provider.published.filter((kid) => kid !== withdrawn.kid), next.kid];
      for (const replica of [a, b]) replica.clock.advance(31_000); // past the unknown-kid cooldown
      provider.attach({ audience: a.base, clock: a.clock });
      await registerIdJag(a.base, provider.mintIdJag({ sub: 'user-3', email: 'cy@example.com' }, { key: next }));
      const announcedIn = await until('B heard that the key set changed', () => jwksHeard.length > 0, 2000);
      windows.push({ what: 'provider jwks change', ms: announcedIn });

      // B's copy (still fresh for an hour) was dropped: the withdrawn key is refused there now.
      await expectRefused(await presentIdJag(b.base, provider.mintIdJag({ sub: 'user-4', email: 'di@example.com' }, { key: withdrawn })), 'unknown_key');
      await registerIdJag(b.base, provider.mintIdJag({ sub: 'user-5', email: 'ed@example.com' }, { key: next }));
      // One fetch by A (unknown kid) and one by B (its copy dropped); not one per request.
      expect(provider.hits('/jwks') - fetchesBefore).toBe(2);
    } finally {
      listening.close();
    }
  });

  it('reconnects a LISTEN connection that was cut, treats every cache as stale, and delivers revocations again', async () => {
    const { a, b, probeA, probeB } = await twoReplicas();
    const { token: cachedBefore } = await tokenCachedOnB(a, b);
    const listeners = await query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`);
    expect(listeners).toHaveLength(2); // one per replica
    const [staleA, staleB] = [probeA.stale, probeB.stale];
    // A revocation written behind the services' backs, while B still has the token cached:
    await query('UPDATE access_tokens SET revoked_at = 1');
    expect((await callApi(b.base, cachedBefore)).status).toBe(200);
    await query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [listeners.map((l) => l.pid)]);
    const reconnectedIn = await until('both replicas reconnected', () => probeA.stale > staleA && probeB.stale > staleB);
    windows.push({ what: 'reconnect', ms: reconnectedIn });
    // On reconnect B cleared its cache: what it may have missed is read again from the store.
    expect((await callApi(b.base, cachedBefore)).status).toBe(401);
    const again = await query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`);
    expect(again).toHaveLength(2);
    expect(again.map((l) => l.pid)).not.toContain(listeners[0]!.pid);
    // And revocations are delivered again.
    const { token } = await tokenCachedOnB(a, b);
    expect((await postForm(`${a.base}/oauth2/revoke`, { token })).status).toBe(200);
    expect((await callApi(b.base, token)).status).toBe(401);
  });
});

describe('the PostgreSQL invalidation channel', () => {
  let stores: Store[] = [];
  afterEach(async () => {
    await Promise.all(stores.map((s) => s.close()));
    stores = [];
  });
  const open = (echoTimeoutMs: number): Store => {
    const s = createPostgresStore({ connectionString: db!.url, echoTimeoutMs });
    stores.push(s);
    return s;
  };

  it('resolves a broadcast only after every other listening store has run its listeners', async () => {
    db = await createTestDatabase();
    const [sender, ...others] = [open(1000), open(1000), open(1000)];
    const heard: string[][] = [[], [], []];
    const subscriptions = [sender!, ...others].map((s, i) => s.subscribe!('t', (m) => m !== undefined && heard[i]!.push(m)));
    await until('all three listening', () => subscriptions.every((sub) => sub.live));
    const durations: number[] = [];
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      await sender!.broadcast!('t', `m${round}`);
      durations.push(performance.now() - started);
      expect(heard.map((h) => h.at(-1))).toStrictEqual([`m${round}`, `m${round}`, `m${round}`]);
    }
    windows.push({ what: 'broadcast to 2 peers (median of 5)', ms: durations.sort((x, y) => x - y)[2]! });
    expect(Math.max(...durations)).toBeLessThan(1000);
  });

  it('stops waiting at echoTimeoutMs for a listening session that never acknowledges', async () => {
    db = await createTestDatabase();
    const sender = open(150);
    const subscription = sender.subscribe!('t', () => {});
    await until('listening', () => subscription.live);
    // A session that LISTENs on the channel but is no authmd store: counted as a peer, never answers.
    const silent = new pg.Client({ connectionString: db.url });
    await silent.connect();
    try {
      await silent.query('LISTEN authmd_invalidation');
      const started = performance.now();
      await sender.broadcast!('t', 'x');
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(140);
      expect(waited).toBeLessThan(1000);
    } finally {
      await silent.end();
    }
  });
});
