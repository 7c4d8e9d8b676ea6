import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createPostgresStore } from '@authmd/core/postgres';
import { StoreUnavailableError, table, type Store } from '@authmd/core/store';
import { postJson, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { createTestDatabase, relay, type Relay, type TestDatabase } from '../../../../test-support/postgres.ts';

/**
 * A database that stops answering without closing its connections (a network partition, a frozen
 * host), as opposed to a stopped PostgreSQL, which closes them: without a client-side bound, a
 * request waited for TCP to give up, minutes. Issue 11: requests fail fast as unavailable (503 with
 * Retry-After over HTTP), never hang, and recover once the database answers again.
 */

type Item = { id: string; note: string | null };
const items = table<Item>({ name: 'silent_items', key: 'id', columns: { id: 'text', note: 'text' } });

/** The statement timeout these stores run with: small, to keep the tests fast. */
const STATEMENT_TIMEOUT_MS = 500;
/** Every failure must come within this: the statement timeout and some margin, far from TCP's minutes. */
const BOUND_MS = STATEMENT_TIMEOUT_MS + 2000;

let db: TestDatabase | undefined;
let link: Relay | undefined;
let stores: Store[] = [];
let running: RunningService | undefined;
afterEach(async () => {
  link?.restore();
  await running?.close().catch(() => {});
  running = undefined;
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  stores = [];
  await link?.cut();
  link = undefined;
  await db?.drop();
  db = undefined;
});

/** A database reached through a relay that can be made silent. */
async function silentCapable(): Promise<{ url: string; link: Relay }> {
  db = await createTestDatabase();
  link = await relay(new URL(db.url));
  const url = new URL(db.url);
  url.host = `127.0.0.1:${link.port}`;
  return { url: url.toString(), link };
}

function open(url: string): Store {
  const store = createPostgresStore({ connectionString: url, statementTimeoutMs: STATEMENT_TIMEOUT_MS, connectionTimeoutMs: 1000 });
  stores.push(store);
  return store;
}

/** The promise's rejection and how long it took. */
async function failure(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  try {
    await promise;
  } catch (error) {
    return { error, ms: performance.now() - started };
  }
  throw new Error('expected a failure');
}

/** Sessions whose last statement was the LISTEN of the invalidation channel: what `broadcast` counts as peers. */
async function listeningSessions(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN authmd_invalidation'",
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Opens a few connections in each of the store's pools, so that what follows runs on pooled ones. */
async function warm(store: Store): Promise<void> {
  await Promise.all(Array.from({ length: 4 }, () => store.transaction(async (tx) => tx.get(items, 'none'))));
  await Promise.all(Array.from({ length: 4 }, (_, i) => store.incrementWithin(`warm-${i}`, 60_000, Date.now())));
}

/** Many concurrent queries, each answered with its own row: no connection reads another's answer. */
async function expectServing(store: Store, prefix: string): Promise<void> {
  const ids = Array.from({ length: 20 }, (_, i) => `${prefix}-${i}`);
  await Promise.all(ids.map((id) => store.insert(items, { id, note: `note of ${id}` })));
  const started = performance.now();
  const rows = await Promise.all(ids.map((id) => store.get(items, id)));
  expect(rows).toEqual(ids.map((id) => ({ id, note: `note of ${id}` })));
  await store.transaction(async (tx) => {
    for (const id of ids.slice(0, 5)) expect(await tx.get(items, id)).toEqual({ id, note: `note of ${id}` });
    await tx.update(items, ids[0]!, { note: 'changed' });
  });
  expect(await store.get(items, ids[0]!)).toEqual({ id: ids[0], note: 'changed' });
  expect(performance.now() - started).toBeLessThan(BOUND_MS);
}

describe('postgres store, database silent (connections held open, nothing answered)', () => {
  it('fails a query as unavailable within the bound, and serves again once the database answers', async () => {
    const { url, link } = await silentCapable();
    const store = open(url);
    await store.migrate([items]);
    await store.insert(items, { id: 'before', note: 'kept' });
    await warm(store);

    // On pooled connections: the statement goes out and no answer comes.
    link.blackHole();
    const reads = await Promise.all([store.get(items, 'before'), store.insert(items, { id: 'during', note: null }), store.incrementWithin('k', 60_000, Date.now())].map(failure));
    for (const { error, ms } of reads) {
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(ms).toBeLessThan(BOUND_MS);
    }

    link.restore();
    await expectServing(store, 'after');
    expect(await store.get(items, 'before')).toEqual({ id: 'before', note: 'kept' });
  });

  it('notices a silent LISTEN connection by its heartbeat: not live, then live again with "may have missed"', async () => {
    const { url, link } = await silentCapable();
    const heartbeatMs = 200;
    const store = createPostgresStore({ connectionString: url, statementTimeoutMs: STATEMENT_TIMEOUT_MS, connectionTimeoutMs: 1000, listenHeartbeatMs: heartbeatMs });
    const direct = createPostgresStore({ connectionString: db!.url });
    stores.push(store, direct);
    const heard: (string | undefined)[] = [];
    const subscription = store.subscribe!('topic', (message) => heard.push(message));
    await until(() => subscription.live, 'the first LISTEN');
    heard.length = 0;
    // After a few heartbeats the session is still seen as listening: broadcasts count on it to wait for its acknowledgement.
    await new Promise((resolve) => setTimeout(resolve, 3 * heartbeatMs));
    const listening = await listeningSessions(db!.url);
    expect(listening).toBe(1);

    link.blackHole();
    const silentAt = performance.now();
    await until(() => !subscription.live, 'the heartbeat noticing');
    // Asked every 200 ms, given 200 ms to answer: noticed within about twice the heartbeat.
    expect(performance.now() - silentAt).toBeLessThan(4 * heartbeatMs + 500);

    link.restore();
    await until(() => subscription.live, 'the LISTEN coming back');
    expect(heard).toContain(undefined); // whatever was broadcast meanwhile may have been missed
    await direct.broadcast!('topic', 'after');
    await until(() => heard.includes('after'), 'a message after the return');
  });

  it('fails a transaction as unavailable within the bound, commits nothing of it, and serves again', async () => {
    const { url, link } = await silentCapable();
    const store = open(url);
    await store.migrate([items]);
    await warm(store);

    // Silent between two statements of a transaction.
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    let silenced!: () => void;
    const silent = new Promise<void>((resolve) => (silenced = resolve));
    const between = store.transaction(async (tx) => {
      await tx.insert(items, { id: 'first', note: null });
      inside();
      await silent;
      await tx.insert(items, { id: 'second', note: null });
    });
    await entered;
    link.blackHole();
    silenced();
    const first = await failure(between);
    expect(first.error).toBeInstanceOf(StoreUnavailableError);
    expect(first.ms).toBeLessThan(BOUND_MS);

    // A transaction function that swallows the failure and returns: its COMMIT must not go out on
    // that connection (the answer of the statement that timed out may still come, late).
    link.restore();
    let swallowedInside!: () => void;
    const swallowedEntered = new Promise<void>((resolve) => (swallowedInside = resolve));
    const swallowing = failure(
      store.transaction(async (tx) => {
        await tx.insert(items, { id: 'swallowed-first', note: null });
        swallowedInside();
        await silent;
        await tx.insert(items, { id: 'swallowed', note: null }).catch(() => {});
        await tx.insert(items, { id: 'after-swallowed', note: null }).catch(() => {});
        return 'done';
      }),
    );
    await swallowedEntered;
    link.blackHole();
    const swallowed = await swallowing;
    expect(swallowed.error).toBeInstanceOf(StoreUnavailableError);
    expect(swallowed.ms).toBeLessThan(BOUND_MS);

    // Silent from the start (BEGIN unanswered).
    const whole = await failure(store.transaction(async (tx) => tx.insert(items, { id: 'whole', note: null })));
    expect(whole.error).toBeInstanceOf(StoreUnavailableError);
    expect(whole.ms).toBeLessThan(BOUND_MS);

    link.restore();
    await expectServing(store, 'after');
    for (const id of ['first', 'second', 'swallowed-first', 'swallowed', 'after-swallowed', 'whole']) expect(await store.get(items, id)).toBeUndefined();
  });

  it('fails opening a connection as unavailable within the bound (connectionTimeoutMs)', async () => {
    const { url, link } = await silentCapable();
    const store = open(url);
    link.blackHole();
    const { error, ms } = await failure(store.migrate([items]));
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(ms).toBeLessThan(BOUND_MS);
    link.restore();
    await store.migrate([items]);
    await expectServing(store, 'after');
  });

  it('answers a registration with 503 and Retry-After within the bound over HTTP, and 200 once the database answers', async () => {
    const { url, link } = await silentCapable();
    running = await startService({ store: createPostgresStore({ connectionString: url, statementTimeoutMs: STATEMENT_TIMEOUT_MS }) });
    const { base } = running;
    expect((await registerAnonymous(base)).id).toBeTruthy();

    link.blackHole();
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
      expect(performance.now() - started).toBeLessThan(BOUND_MS);
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await response.json()).error).toBe('temporarily_unavailable');
    }

    link.restore();
    expect((await registerAnonymous(base)).id).toBeTruthy();
  });
});
