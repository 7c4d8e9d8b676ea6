import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
// Through the package export, as a backend written elsewhere would use it.
import { describeStoreContract } from '@authmd/core/store/testing';
import { DuplicateKeyError, StoreUnavailableError, table, type Store } from '../../src/store/contract.ts';
import { createPostgresStore, POSTGRES_LAYOUT_VERSION, SchemaVersionError } from '../../src/store/postgres/postgres-store.ts';
import { createTestDatabase, testDatabasePool, type TestDatabase } from '../../../../test-support/postgres.ts';
import { before, ids, newest, pages, ROWS, signups, T0 } from './signups-fixture.ts';

/** One query on a connection of its own, beside the store under test. */
async function query<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** A pool in pipeline mode whose connections record the first two words and the parameter count of every statement they send. */
function recordingPool(url: string, max: number): { pool: pg.Pool; sent: string[]; parameters: number[] } {
  const pool = new pg.Pool({ connectionString: url, max, pipeline: true });
  const sent: string[] = [];
  const parameters: number[] = [];
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      sent.push((typeof first === 'string' ? first : String((first as { text?: unknown }).text)).split(/\s+/).slice(0, 2).join(' '));
      parameters.push(Array.isArray(args[1]) ? args[1].length : 0);
      return query(...args);
    };
  });
  return { pool, sent, parameters };
}

// Each test of the contract on a database as a new one (no tables), made once and emptied of its
// tables after each test: creating and dropping a database per test took about 0.2 s of each.
const contractDatabases = testDatabasePool({ keepLayout: false });
afterAll(() => contractDatabases.close());
describeStoreContract(
  'postgres',
  async () => {
    const db = await contractDatabases.lease();
    return {
      store: createPostgresStore({ connectionString: db.url }),
      reopen: async () => createPostgresStore({ connectionString: db.url }),
      cleanup: () => db.release(),
    };
  },
  { persistent: true },
);

type Ticket = { id: string; state: string | null; count: number | null; owner: string | null; hash: string | null; due: number | null };
const tickets = table<Ticket>({
  name: 'tickets',
  key: 'id',
  columns: { id: 'text', state: 'text', count: 'integer', owner: 'text', hash: 'text', due: 'integer' },
  unique: ['hash'],
  indexed: ['owner', 'due'],
  expiresAt: 'due',
});
const ticket = (id: string, fields: Partial<Ticket> = {}): Ticket => ({ id, state: null, count: null, owner: null, hash: null, due: null, ...fields });

describe('postgres store', () => {
  let db: TestDatabase;
  let stores: Store[] = [];
  const open = (): Store => {
    const store = createPostgresStore({ connectionString: db.url });
    stores.push(store);
    return store;
  };
  const peek = <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) => query<T>(db.url, sql, values);

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(stores.map((store) => store.close()));
    stores = [];
    await peek('DROP TABLE IF EXISTS tickets, notes, authmd_counters, authmd_schema');
  });
  afterAll(async () => {
    await db.drop();
  });

  /** Two stores with their own pools: two replicas of the service on one database. */
  async function replicas(): Promise<[Store, Store]> {
    const a = open();
    const b = open();
    await a.migrate([tickets]);
    await b.migrate([tickets]);
    return [a, b];
  }

  it('gives a row to exactly one of 20 concurrent consumeOne calls across two replicas', async () => {
    const [a, b] = await replicas();
    for (let round = 0; round < 5; round++) {
      await a.insert(tickets, ticket(`secret${round}`, { state: 'fresh' }));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).consumeOne(tickets, `secret${round}`, { state: 'fresh' })));
      expect(results.filter((row) => row !== undefined)).toStrictEqual([ticket(`secret${round}`, { state: 'fresh' })]);
      expect(await b.get(tickets, `secret${round}`)).toBeUndefined();
    }
  });

  it('lets exactly one of 20 concurrent compare-and-set updates across two replicas win', async () => {
    const [a, b] = await replicas();
    for (let round = 0; round < 5; round++) {
      await a.insert(tickets, ticket(`t${round}`, { state: 'open' }));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).update(tickets, `t${round}`, { state: `done-by-${i}` }, { state: 'open' })),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await a.get(tickets, `t${round}`))?.state).toBe(`done-by-${results.indexOf(true)}`);
    }
  });

  it('loses no update when concurrent transactions on two replicas read and then write a counter', async () => {
    const [a, b] = await replicas();
    await a.insert(tickets, ticket('ctr', { count: 0 }));
    const bump = (store: Store) =>
      store.transaction(async (tx) => {
        const row = await tx.get(tickets, 'ctr');
        await new Promise((done) => setTimeout(done, 2)); // widen the window a lost update would need
        await tx.update(tickets, 'ctr', { count: row!.count! + 1 });
      });
    await Promise.all(Array.from({ length: 16 }, (_, i) => bump(i % 2 ? a : b)));
    expect((await a.get(tickets, 'ctr'))?.count).toBe(16);
  });

  it('lets shared reads of one row on two replicas run together, and holds a writer until they commit', async () => {
    const [a, b] = await replicas();
    await a.insert(tickets, ticket('hot', { state: 'live' }));
    let finishFirst!: () => void;
    const firstMayFinish = new Promise<void>((resolve) => (finishFirst = resolve));
    let firstRead!: () => void;
    const firstHasRead = new Promise<void>((resolve) => (firstRead = resolve));
    const first = a.transaction(async (tx) => {
      await tx.get(tickets, 'hot', { shared: true });
      firstRead();
      await firstMayFinish;
    });
    await firstHasRead;
    // A second shared read of the same row does not wait for the first transaction (FOR UPDATE would).
    const second = await Promise.race([
      b.transaction(async (tx) => (await tx.get(tickets, 'hot', { shared: true }))?.state),
      new Promise((resolve) => setTimeout(() => resolve('waited'), 1000)),
    ]);
    expect(second).toBe('live');
    // A writer waits for the open shared reader.
    let written = false;
    const writer = b.update(tickets, 'hot', { state: 'revoked' }).then(() => (written = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written).toBe(false);
    finishFirst();
    await first;
    await writer;
    expect((await a.get(tickets, 'hot'))?.state).toBe('revoked');
  });

  it('sends a transaction that only appends as one statement, and a read then appends in two round trips', async () => {
    const { pool, sent } = recordingPool(db.url, 1);
    const store = createPostgresStore({ pool });
    try {
      await store.migrate([tickets]);
      sent.length = 0;
      await store.transaction(async (tx) => {
        await tx.append(tickets, ticket('a1'));
        await tx.append(tickets, ticket('a2'));
        await tx.append(tickets, ticket('a3'));
      });
      // Rows of one table go in one multi-row INSERT.
      expect(sent).toEqual(['INSERT INTO']);
      sent.length = 0;
      await store.transaction(async (tx) => {
        expect((await tx.get(tickets, 'a1', { shared: true }))?.id).toBe('a1');
        await tx.append(tickets, ticket('b1'));
        await tx.append(tickets, ticket('b2'));
      });
      expect(sent).toEqual(['BEGIN', 'SELECT "id",', 'INSERT INTO', 'COMMIT']);
      // More appends than the append batcher takes (32): a transaction of its own.
      sent.length = 0;
      await store.transaction(async (tx) => {
        for (let i = 0; i < 40; i++) await tx.append(tickets, ticket(`c${i}`));
      });
      expect(sent).toEqual(['BEGIN', 'INSERT INTO', 'COMMIT']);
      // More than one statement carries (1,000): several statements, in one transaction.
      sent.length = 0;
      await store.transaction(async (tx) => {
        for (let i = 0; i < 1040; i++) await tx.append(tickets, ticket(`d${i}`));
      });
      expect(sent).toEqual(['BEGIN', 'INSERT INTO', 'INSERT INTO', 'COMMIT']);
      expect((await store.findMany(tickets, 'owner', 'none')).length).toBe(0);
      expect((await store.get(tickets, 'b2'))?.id).toBe('b2');
      // A transaction that writes nothing sends nothing.
      sent.length = 0;
      await store.transaction(async () => undefined);
      expect(sent).toEqual([]);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  type Note = { id: string; ticket: string };
  const notes = table<Note>({ name: 'notes', key: 'id', columns: { id: 'text', ticket: 'text' }, indexed: ['ticket'] });

  /** `f` with a store on a recording pool (`recordingPool`), its tables migrated, closed after it. */
  async function withRecorded(f: (recorded: { store: Store; sent: string[]; parameters: number[] }) => Promise<void>): Promise<void> {
    const { pool, sent, parameters } = recordingPool(db.url, 4);
    const store = createPostgresStore({ pool });
    try {
      await store.migrate([tickets, notes]);
      sent.length = 0;
      parameters.length = 0;
      await f({ store, sent, parameters });
    } finally {
      await store.close();
      await pool.end();
    }
  }

  describe('group commit: transactions that only append, and counters', () => {
    /** A registration's shape: rows in two tables, appended in one transaction. */
    const register = (store: Store, id: string, hash: string | null = null) =>
      store.transaction(async (tx) => {
        await tx.append(tickets, ticket(id, { hash, owner: 'batch' }));
        await tx.append(notes, { id: `${id}-note`, ticket: id });
      });

    it('commits the appends of concurrent transactions in one statement, every row written', async () => {
      await withRecorded(async ({ store, sent }) => {
        await Promise.all(Array.from({ length: 20 }, (_, i) => register(store, `t${i}`)));
        // The 20 transactions arrived in one turn: one statement (one commit, one WAL flush) for all.
        expect(sent).toEqual(['WITH w0']);
        expect((await peek<{ n: string }>('SELECT count(*) AS n FROM tickets'))[0]!.n).toBe('20');
        expect((await peek<{ n: string }>('SELECT count(*) AS n FROM notes'))[0]!.n).toBe('20');
      });
    });

    it('fails only the transaction holding a duplicate, and writes none of its rows', async () => {
      await withRecorded(async ({ store, sent }) => {
        await store.insert(tickets, ticket('held', { hash: 'taken' }));
        sent.length = 0;
        const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => register(store, `d${i}`, i === 4 ? 'taken' : null)));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(9);
        const failed = results[4] as PromiseRejectedResult;
        expect(failed.reason).toBeInstanceOf(DuplicateKeyError);
        expect(failed.reason).toMatchObject({ table: 'tickets', column: 'hash' });
        // The batch failed as a whole, then each transaction went again alone.
        expect(sent).toEqual(['WITH w0', ...Array<string>(10).fill('WITH w0')]);
        expect(await store.get(tickets, 'd4')).toBeUndefined();
        expect(await store.get(notes, 'd4-note')).toBeUndefined();
        for (const i of [0, 1, 2, 3, 5, 6, 7, 8, 9]) expect((await store.get(notes, `d${i}-note`))?.ticket).toBe(`d${i}`);
      });
    });

    it('keeps batches within their bounds: 1,500 transactions of 8 parameters go out as several statements of at most 8,192', async () => {
      await withRecorded(async ({ store, sent, parameters }) => {
        await Promise.all(Array.from({ length: 1500 }, (_, i) => register(store, `b${i}`)));
        expect(sent.length).toBeGreaterThanOrEqual(2);
        expect(sent.length).toBeLessThan(20);
        expect(Math.max(...parameters)).toBeLessThanOrEqual(8192);
        expect((await peek<{ n: string }>('SELECT count(*) AS n FROM notes'))[0]!.n).toBe('1500');
      });
    });

    it('counts the tiered limits of concurrent calls in one statement per tier, each counter once', async () => {
      await withRecorded(async ({ store, sent }) => {
        const now = 1_000_000;
        // Two networks' registrations: the first tier per network (limit 3), then the whole service.
        const call = (network: string) =>
          store.incrementTiers(
            [
              { key: `ip:${network}`, windowMs: 1000, limit: 3 },
              { key: 'service', windowMs: 5000, limit: 100 },
            ],
            now,
          );
        const results = await Promise.all([...Array<string>(5).fill('a'), ...Array<string>(2).fill('b')].map(call));
        expect(sent).toEqual(['WITH v', 'WITH v']);
        // Network a: counts 1..5, in the calls' order; the two past its limit stop there.
        expect(results.slice(0, 5).map((states) => states[0]!.count)).toEqual([1, 2, 3, 4, 5]);
        expect(results.map((states) => states.length)).toEqual([2, 2, 2, 1, 1, 2, 2]);
        expect(results.slice(5).map((states) => states[0]!.count)).toEqual([1, 2]);
        // The service counted the five that passed their first tier: 1..5, each once.
        expect(results.flatMap((states) => (states[1] ? [states[1].count] : [])).sort()).toEqual([1, 2, 3, 4, 5]);
        expect(results[0]![1]!.resetAt).toBe(now + 5000);
        expect(await store.peekCounter('service', now)).toEqual({ count: 5, resetAt: now + 5000 });
        // A new window for a counter whose window ended, at the latest now of the calls counting it.
        const later = await Promise.all([store.incrementWithin('ip:b', 1000, now + 999), store.incrementWithin('ip:b', 1000, now + 1000)]);
        expect(later).toEqual([
          { count: 1, resetAt: now + 2000 },
          { count: 2, resetAt: now + 2000 },
        ]);
      });
    });

    it('reads each counter\'s own now in a batch, whatever its key holds', async () => {
      await withRecorded(async ({ store, sent }) => {
        const keys = ['__proto__', 'constructor', 'a"b\\c{d},e', 'x\u0000y\uFFFF'];
        const first = await Promise.all(keys.flatMap((key) => [store.incrementWithin(key, 1000, 0), store.incrementWithin(key, 1000, 0)]));
        expect(first.map((state) => state.count)).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
        // One batch, two nows: the window of the first two keys is still open at 999, that of the others ended at 1000.
        const second = await Promise.all(keys.map((key, i) => store.incrementWithin(key, 1000, i < 2 ? 999 : 1000)));
        expect(second).toEqual([
          { count: 3, resetAt: 1000 },
          { count: 3, resetAt: 1000 },
          { count: 1, resetAt: 2000 },
          { count: 1, resetAt: 2000 },
        ]);
        expect(sent).toEqual(['WITH v', 'WITH v']);
      });
    });

    it('commits a lone transaction that only appends at once, and one that reads still on its own connection', async () => {
      await withRecorded(async ({ store, sent }) => {
        await register(store, 'lone');
        expect(sent).toEqual(['WITH w0']);
        sent.length = 0;
        await Promise.all([
          register(store, 'with-read-0'),
          store.transaction(async (tx) => {
            expect((await tx.get(tickets, 'lone'))?.id).toBe('lone');
            await tx.append(notes, { id: 'read-then-append', ticket: 'lone' });
          }),
        ]);
        expect(sent.sort()).toEqual(['BEGIN', 'COMMIT', 'INSERT INTO', 'SELECT "id",', 'WITH w0']);
        expect(await store.get(notes, 'read-then-append')).toBeDefined();
      });
    });
  });

  /**
   * `f` with a store on a pool of one connection, its tables migrated: every statement runs in one
   * session, whose prepared statements `prepared` lists (those starting with `start`).
   */
  async function withOneSession(
    options: { preparedStatements?: boolean },
    f: (session: { store: Store; prepared(start: string): Promise<string[]> }) => Promise<void>,
  ): Promise<void> {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const store = createPostgresStore({ pool, ...options });
    const prepared = async (start: string) =>
      (await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements')).rows.map((row) => row.statement).filter((text) => text.startsWith(start));
    try {
      await store.migrate([tickets, notes]);
      await f({ store, prepared });
    } finally {
      await store.close();
      await pool.end();
    }
  }

  it('prepares its statements once per connection, unless told not to', async () => {
    for (const preparedStatements of [true, false]) {
      await withOneSession({ preparedStatements }, async ({ store, prepared }) => {
        const id = `prepared-${preparedStatements}`;
        await store.insert(tickets, ticket(id));
        for (let i = 0; i < 3; i++) expect((await store.get(tickets, id))?.id).toBe(id);
        expect(await prepared('SELECT "id"')).toHaveLength(preparedStatements ? 1 : 0);
      });
    }
  });

  it('sends a batch of appends as one text whatever its size, so that it is prepared once', async () => {
    await withOneSession({}, async ({ store, prepared }) => {
      for (const size of [2, 5, 9]) {
        await Promise.all(
          Array.from({ length: size }, (_, i) =>
            store.transaction(async (tx) => {
              await tx.append(tickets, ticket(`size${size}-${i}`));
              await tx.append(notes, { id: `size${size}-${i}`, ticket: `size${size}-${i}` });
            }),
          ),
        );
      }
      expect(await prepared('WITH w0')).toHaveLength(1);
      expect((await peek<{ n: string }>("SELECT count(*) AS n FROM notes WHERE id LIKE 'size%'"))[0]!.n).toBe('16');
    });
  });

  it('keeps serving its prepared statements after another replica adds a column (a rolling upgrade)', async () => {
    const older = table<{ id: string; note: string | null }>({ name: 'upgraded', key: 'id', columns: { id: 'text', note: 'text' } });
    const newer = table<{ id: string; note: string | null; extra: number | null }>({ name: 'upgraded', key: 'id', columns: { id: 'text', note: 'text', extra: 'integer' } });
    await withOneSession({}, async ({ store, prepared }) => {
      await store.migrate([older]);
      const append = (id: string) => store.transaction(async (tx) => tx.append(older, { id, note: id }));
      await append('before');
      expect((await store.get(older, 'before'))?.note).toBe('before');
      expect(await prepared('SELECT "id", "note"')).toHaveLength(1);
      // The newer replica migrates while this one holds its statements prepared.
      const upgraded = open();
      await upgraded.migrate([newer]);
      await upgraded.insert(newer, { id: 'by-newer', note: 'n', extra: 7 });
      await append('after');
      expect((await store.get(older, 'after'))?.note).toBe('after');
      expect(await store.get(older, 'by-newer')).toEqual({ id: 'by-newer', note: 'n' });
      expect(await upgraded.get(newer, 'after')).toEqual({ id: 'after', note: 'after', extra: null });
    });
  });

  it('lets two stores prepare their statements on one shared pool', async () => {
    // One connection: both stores' statements are prepared in one session, where a name means one text.
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const first = createPostgresStore({ pool });
    const second = createPostgresStore({ pool });
    try {
      await first.migrate([tickets]);
      await second.migrate([notes]);
      await first.insert(tickets, ticket('shared-pool'));
      await second.insert(notes, { id: 'shared-pool', ticket: 'shared-pool' });
      expect((await first.get(tickets, 'shared-pool'))?.id).toBe('shared-pool');
      expect((await second.get(notes, 'shared-pool'))?.ticket).toBe('shared-pool');
    } finally {
      await first.close();
      await second.close();
      await pool.end();
    }
  });

  it('batches lookups by key outside transactions: one statement per table for the keys asked in one turn, each caller its own row', async () => {
    await withRecorded(async ({ store, sent }) => {
      // A key holding U+0000 and U+FFFF (stored escaped), one with an array literal's special characters,
      // one spelled like its null, and a key of another table, among the batch.
      const odd = 'odd\u0000key\uFFFF';
      const literal = 'a"b\\c{d},e\'f';
      for (const id of ['k0', 'k1', 'k2', odd, literal, 'NULL']) await store.insert(tickets, ticket(id, { state: `state of ${id}` }));
      await store.insert(notes, { id: 'k1', ticket: 'k1' });
      sent.length = 0;
      const [k0, k1, again, missing, oddRow, note] = await Promise.all([
        store.get(tickets, 'k0'),
        store.get(tickets, 'k1'),
        store.get(tickets, 'k1'),
        store.get(tickets, 'absent'),
        store.get(tickets, odd),
        store.get(notes, 'k1'),
      ]);
      expect([k0?.state, k1?.state, again?.state, missing, oddRow?.state, note?.ticket]).toEqual(['state of k0', 'state of k1', 'state of k1', undefined, `state of ${odd}`, 'k1']);
      expect(k0).toEqual(ticket('k0', { state: 'state of k0' }));
      expect(sent).toEqual(['SELECT "id",', 'SELECT "id",']);
      const [literalRow, nullRow, upper] = await Promise.all([store.get(tickets, literal), store.get(tickets, 'NULL'), store.get(tickets, 'K0')]);
      expect([literalRow?.state, nullRow?.state, upper]).toEqual([`state of ${literal}`, 'state of NULL', undefined]);
      // A lookup sees what was committed before it was asked for.
      await store.update(tickets, 'k0', { state: 'changed' });
      expect((await store.get(tickets, 'k0'))?.state).toBe('changed');
    });
  });

  it('gives its connection back when a transaction ends without waiting for its first statement', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1, connectionTimeoutMillis: 2000 });
    const store = createPostgresStore({ pool });
    try {
      await store.migrate([tickets]);
      for (let i = 0; i < 3; i++) {
        const failure = new Error('gave up');
        let read: Promise<unknown> | undefined;
        await expect(
          store.transaction(async (tx) => {
            read = tx.get(tickets, 'any');
            throw failure;
          }),
        ).rejects.toBe(failure);
        // The rollback went out behind the read, so the read was answered (no row) before the connection went back.
        await expect(read).resolves.toBeUndefined();
      }
      // With one connection in the pool, a connection kept by any of them would make this wait, then fail.
      await store.transaction(async (tx) => tx.append(tickets, ticket('after')));
      expect((await store.transaction(async (tx) => tx.get(tickets, 'after')))?.id).toBe('after');
      expect(pool.idleCount).toBe(1);
    } finally {
      await store.close();
      await pool.end();
    }
  });

  describe('rerunnable transactions: a shared read without a lock, guarded by the row version', () => {
    /** `withRecorded`, with the row 'r' (state 'a') in place before the recording starts. */
    const withRow = (f: (recorded: { store: Store; sent: string[] }) => Promise<void>) =>
      withRecorded(async (recorded) => {
        await recorded.store.insert(tickets, ticket('r', { state: 'a' }));
        recorded.sent.length = 0;
        await f(recorded);
      });

    /** An exchange's shape: read 'r' shared, then append a note of what was read. `between` runs after the read. */
    function readThenAppend(store: Store, id: string, runs: string[], between: () => Promise<unknown> = async () => {}) {
      return store.transaction(
        async (tx) => {
          const row = await tx.get(tickets, 'r', { shared: true });
          runs.push(row!.state!);
          await between();
          await tx.append(notes, { id, ticket: row!.state! });
          return row!.state;
        },
        { rerunnable: true },
      );
    }

    it('reads without a lock or a connection of its own, the reads of concurrent ones batched, and commits their appends in one guarded statement', async () => {
      await withRow(async ({ store, sent }) => {
        const runs: string[] = [];
        // Every transaction appends once all 20 have read: their commits come in one turn.
        let allRead!: () => void;
        const read = new Promise<void>((resolve) => (allRead = resolve));
        const between = async () => {
          if (runs.length === 20) allRead();
          await read;
        };
        await Promise.all(Array.from({ length: 20 }, (_, i) => readThenAppend(store, `n${i}`, runs, between)));
        expect(runs).toHaveLength(20);
        // The 20 reads went out in one turn: one statement for all of them, and one for their appends.
        expect(sent).toEqual(['SELECT "id",', 'WITH g0']);
        expect((await peek<{ n: string }>('SELECT count(*) AS n FROM notes'))[0]!.n).toBe('20');
      });
    });

    it('runs again, with the lock, when the row changed between its read and its write', async () => {
      await withRow(async ({ store, sent }) => {
        const runs: string[] = [];
        let changes = 0;
        const result = await readThenAppend(store, 'once', runs, async () => {
          if (changes++ === 0) await peek("UPDATE tickets SET state = 'b' WHERE id = 'r'");
        });
        expect(runs).toEqual(['a', 'b']);
        expect(result).toBe('b');
        // The first run's note did not land; the second run locked the row as it read it.
        expect(await peek('SELECT id, ticket FROM notes')).toEqual([{ id: 'once', ticket: 'b' }]);
        expect(sent).toEqual(['SELECT "id",', 'WITH g0', 'BEGIN', 'SELECT "id",', 'INSERT INTO', 'COMMIT']);
      });
    });

    it('waits for a transaction holding the row: runs again when it committed a change, goes through when it rolled back', async () => {
      for (const [end, expected] of [
        ['COMMIT', ['a', 'b']],
        ['ROLLBACK', ['a']],
      ] as const) {
        await peek('DROP TABLE IF EXISTS tickets, notes');
        await withRow(async ({ store }) => {
          const holder = new pg.Client({ connectionString: db.url });
          await holder.connect();
          try {
            await holder.query('BEGIN');
            await holder.query("UPDATE tickets SET state = 'b' WHERE id = 'r'");
            const runs: string[] = [];
            const exchanged = readThenAppend(store, 'late', runs);
            await new Promise((resolve) => setTimeout(resolve, 200));
            // The read saw the committed version; the guarded statement waits for the holder's lock.
            expect(runs).toEqual(['a']);
            expect(await peek('SELECT id FROM notes')).toEqual([]);
            await holder.query(end);
            await exchanged;
            expect(runs).toEqual(expected);
            expect(await peek('SELECT ticket FROM notes')).toEqual([{ ticket: expected.at(-1) }]);
          } finally {
            await holder.end();
          }
        });
      }
    });

    it('locks the row as read before any other statement, and runs again when it changed', async () => {
      await withRow(async ({ store, sent }) => {
        await store.insert(tickets, ticket('other', { state: 'x' }));
        sent.length = 0;
        const runs: string[] = [];
        let changes = 0;
        await store.transaction(
          async (tx) => {
            const row = await tx.get(tickets, 'r', { shared: true });
            runs.push(row!.state!);
            if (changes++ === 0) await peek("UPDATE tickets SET state = 'c' WHERE id = 'r'");
            await tx.update(tickets, 'other', { state: row!.state });
          },
          { rerunnable: true },
        );
        // First run: the guard's lock found another version, and nothing more went out.
        expect(sent.slice(0, 4)).toEqual(['SELECT "id",', 'BEGIN', 'SELECT 1', 'ROLLBACK']);
        expect(sent.slice(4)).toEqual(['BEGIN', 'SELECT "id",', 'UPDATE "tickets"', 'COMMIT']);
        expect(runs).toEqual(['a', 'c']);
        expect((await store.get(tickets, 'other'))?.state).toBe('c');
      });
    });
  });

  it('keeps a transaction usable after it caught a DuplicateKeyError', async () => {
    const [a] = await replicas();
    await a.insert(tickets, ticket('taken', { hash: 'h' }));
    await a.transaction(async (tx) => {
      await tx.insert(tickets, ticket('first'));
      await expect(tx.insert(tickets, ticket('second', { hash: 'h' }))).rejects.toBeInstanceOf(DuplicateKeyError);
      await expect(tx.update(tickets, 'first', { hash: 'h' })).rejects.toMatchObject({ column: 'hash' });
      await tx.insert(tickets, ticket('third'));
    });
    expect((await a.get(tickets, 'first'))?.hash).toBeNull();
    expect(await a.get(tickets, 'second')).toBeUndefined();
    expect(await a.get(tickets, 'third')).toBeDefined();
  });

  it('migrates once when two replicas migrate at the same time', async () => {
    for (let round = 0; round < 4; round++) {
      const spec = table<{ id: string; v: string | null; w: number | null }>({
        name: `evolving_${round}`,
        key: 'id',
        columns: { id: 'text', v: 'text', w: 'integer' },
        unique: ['v'],
        indexed: ['w'],
      });
      const [a, b] = [open(), open()];
      // Without the advisory lock, two concurrent CREATE TABLE IF NOT EXISTS collide in pg_type.
      await Promise.all([a.migrate([spec]), b.migrate([spec])]);
      await a.insert(spec, { id: 'x', v: 'v', w: 1 });
      expect(await b.findOne(spec, 'v', 'v')).toStrictEqual({ id: 'x', v: 'v', w: 1 });
      const indexes = await peek<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname', [spec.name]);
      expect(indexes.map((i) => i.indexname)).toEqual([`evolving_${round}_pkey`, `evolving_${round}_v_unique`, `evolving_${round}_w_idx`]);
      await peek(`DROP TABLE "evolving_${round}"`);
    }
    expect(await peek('SELECT id, version FROM authmd_schema')).toEqual([{ id: 1, version: POSTGRES_LAYOUT_VERSION }]);
  });

  it('creates the declared indexes and every lookup can use them', async () => {
    const [a] = await replicas();
    const indexes = await peek<{ indexname: string; indexdef: string }>("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tickets'");
    const byName = Object.fromEntries(indexes.map((i) => [i.indexname, i.indexdef]));
    expect(byName['tickets_hash_unique']).toMatch(/^CREATE UNIQUE INDEX/);
    expect(byName['tickets_owner_idx']).toMatch(/^CREATE INDEX/);
    expect(byName['tickets_due_idx']).toMatch(/^CREATE INDEX/);
    const columns = await peek<{ column_name: string; data_type: string }>(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'tickets'",
    );
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.data_type]))).toMatchObject({ id: 'text', count: 'bigint', due: 'bigint' });

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('SET enable_seqscan = off'); // tiny tables: ask whether an index *can* serve the lookup
      const plan = async (sql: string) => (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`)).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(await plan(`SELECT * FROM tickets WHERE "hash" = 'h' LIMIT 1`)).toMatch(/Index Scan using tickets_hash_unique/);
      expect(await plan(`SELECT * FROM tickets WHERE "owner" = 'o' LIMIT 1000`)).toMatch(/tickets_owner_idx/);
      expect(await plan(`SELECT "id" FROM tickets WHERE "due" < 5 ORDER BY "due" LIMIT 10 FOR UPDATE SKIP LOCKED`)).toMatch(/tickets_due_idx/);
      expect(await plan(`DELETE FROM tickets WHERE "id" = 'x' RETURNING *`)).toMatch(/tickets_pkey/);
    } finally {
      await client.end();
    }
    // Integers beyond 32 bits come back as JS numbers.
    await a.insert(tickets, ticket('big', { count: 1_700_000_000_123 }));
    expect((await a.get(tickets, 'big'))?.count).toBe(1_700_000_000_123);
  });

  it('fails fast with StoreUnavailableError when the database is unreachable', async () => {
    const url = new URL(db.url);
    url.port = '1'; // nothing listens there
    const store = createPostgresStore({ connectionString: url.toString() });
    stores.push(store);
    const started = performance.now();
    const attempts = [
      store.migrate([tickets]),
      store.get(tickets, 'a'),
      store.insert(tickets, ticket('a')),
      store.incrementWithin('k', 1000, 0),
      store.transaction(async (tx) => tx.get(tickets, 'a')),
    ];
    // Settled together: the ones after the first fail while the first is still awaited.
    for (const outcome of await Promise.allSettled(attempts)) expect(outcome).toMatchObject({ status: 'rejected', reason: expect.any(StoreUnavailableError) });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('fails with StoreUnavailableError, not a hang, when no connection frees up in time', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // A pool of one whose only connection a transaction holds: the next caller cannot get one.
    const store = createPostgresStore({ connectionString: db.url, max: 1, connectionTimeoutMs: 300 });
    stores.push(store);
    await store.migrate([tickets]);
    let release!: () => void;
    const held = new Promise<void>((done) => (release = done));
    const running = store.transaction(async (tx) => {
      await tx.get(tickets, 'a');
      await held;
    });
    await new Promise((done) => setTimeout(done, 50));
    const started = performance.now();
    await expect(store.get(tickets, 'a')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(1500);
    release();
    await running;
    await client.end();
  });

  it('fails, rather than hangs, when a transaction uses the store instead of its handle', async () => {
    const store = createPostgresStore({ connectionString: db.url, statementTimeoutMs: 300 });
    stores.push(store);
    await store.migrate([tickets]);
    await store.insert(tickets, ticket('a', { state: 'open' }));
    const outcome = store.transaction(async (tx) => {
      await tx.get(tickets, 'a'); // locks the row until the transaction ends
      await store.update(tickets, 'a', { state: 'closed' }); // waits for that lock: can never complete
    });
    await expect(outcome).rejects.toThrow(/instead of the transaction handle/);
    expect((await store.get(tickets, 'a'))?.state).toBe('open');
  });

  it('refuses a database whose schema version is newer than the code knows', async () => {
    const [a] = await replicas();
    await a.insert(tickets, ticket('kept'));
    await peek('UPDATE authmd_schema SET version = $1', [POSTGRES_LAYOUT_VERSION + 1]);
    const newer = open();
    const error = await newer.migrate([tickets]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaVersionError);
    expect((error as Error).message).toMatch(new RegExp(`version ${POSTGRES_LAYOUT_VERSION + 1}, newer than this code knows \\(${POSTGRES_LAYOUT_VERSION}\\)`));
    expect(await peek('SELECT id FROM tickets')).toEqual([{ id: 'kept' }]);
  });

  it('starts beside a running replica without locking its tables when the layout is complete', async () => {
    const [running] = await replicas();
    await running.insert(tickets, ticket('busy'));
    // A request in flight on the running replica: its transaction has written to tickets and not ended.
    const inFlight = new pg.Client({ connectionString: db.url });
    await inFlight.connect();
    try {
      await inFlight.query('BEGIN');
      await inFlight.query(`UPDATE tickets SET state = 'working' WHERE id = 'busy'`);
      const starting = open();
      const started = performance.now();
      // ALTER TABLE … ADD COLUMN IF NOT EXISTS (ACCESS EXCLUSIVE) and CREATE INDEX IF NOT EXISTS (SHARE)
      // would wait for that transaction, and every later request on tickets would queue behind them.
      const outcome = await Promise.race([starting.migrate([tickets]).then(() => 'migrated'), new Promise((done) => setTimeout(() => done('waited'), 3000))]);
      expect(outcome).toBe('migrated');
      expect(performance.now() - started).toBeLessThan(3000);
      // pg_locks spans the cluster: only this database's waits are this test's.
      const waiting = await peek<{ n: string }>(`SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`);
      expect(Number(waiting[0]!.n)).toBe(0);
      await starting.insert(tickets, ticket('next'));
      expect((await running.get(tickets, 'next'))?.id).toBe('next');
    } finally {
      await inFlight.query('ROLLBACK');
      await inFlight.end();
    }
  });

  it('runs as a role that may read and write rows but not change the layout, once the layout is complete', async () => {
    const [owner] = await replicas();
    await owner.insert(tickets, ticket('kept'));
    const role = `authmd_test_app_${randomBytes(4).toString('hex')}`;
    await peek(`CREATE ROLE ${role} LOGIN`);
    const asApp = new URL(db.url);
    asApp.username = role;
    const app = createPostgresStore({ connectionString: asApp.toString() });
    try {
      await peek(`GRANT USAGE ON SCHEMA public TO ${role}`);
      await peek(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
      // Any DDL, even IF NOT EXISTS with nothing to do, needs CREATE on the schema or ownership of the table.
      await app.migrate([tickets]);
      await app.insert(tickets, ticket('new', { owner: 'o' }));
      expect(await app.findMany(tickets, 'owner', 'o')).toStrictEqual([ticket('new', { owner: 'o' })]);
      expect((await app.incrementWithin('k', 1000, 0)).count).toBe(1);
      // A newer layout needs the owner, and the error says so.
      const newer = table<Ticket & { note: string | null }>({ ...tickets, columns: { ...tickets.columns, note: 'text' } });
      const upgrading = createPostgresStore({ connectionString: asApp.toString() });
      const refused = await upgrading.migrate([newer]).catch((error: unknown) => error);
      await upgrading.close();
      expect((refused as Error).message).toMatch(/^This database role may not change the store's layout, which needs: ALTER TABLE "tickets" ADD COLUMN IF NOT EXISTS "note" TEXT\. Start once as the tables' owner/);
    } finally {
      await app.close();
      await peek(`DROP OWNED BY ${role}`);
      await peek(`DROP ROLE ${role}`);
    }
  });

  it('makes what is missing of the layout, and only that, under the migration lock', async () => {
    const [a] = await replicas();
    await a.insert(tickets, ticket('kept', { owner: 'o' }));
    await peek('DROP INDEX tickets_owner_idx');
    await peek('ALTER TABLE tickets DROP COLUMN due');
    const b = open();
    await b.migrate([tickets]);
    const indexes = await peek<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'tickets' ORDER BY indexname");
    expect(indexes.map((i) => i.indexname)).toEqual(['tickets_due_idx', 'tickets_hash_unique', 'tickets_owner_idx', 'tickets_pkey']);
    expect(await b.get(tickets, 'kept')).toStrictEqual(ticket('kept', { owner: 'o' }));
    await b.insert(tickets, ticket('later', { due: 5 }));
    expect(await b.findDue(tickets, 'due', 10, 10)).toStrictEqual([ticket('later', { due: 5 })]);
  });

  it('records the layout version on a database that had the tables but lost the version', async () => {
    await replicas();
    await peek('DELETE FROM authmd_schema');
    await open().migrate([tickets]);
    expect(await peek('SELECT id, version FROM authmd_schema')).toEqual([{ id: 1, version: POSTGRES_LAYOUT_VERSION }]);
  });
});

describe('postgres store: pages at 100,000 rows', () => {

  let db: TestDatabase;
  let pool: pg.Pool;
  let store: Store;
  /** The page statements the store sent, with their parameters. */
  const sent: { text: string; values: unknown[] }[] = [];
  const peek = <T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) => query<T>(db.url, sql, values);

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        const config = typeof args[0] === 'string' ? { text: args[0], values: args[1] as unknown[] } : (args[0] as { text?: string; values?: unknown[] });
        if (config.text?.includes('ORDER BY')) sent.push({ text: config.text, values: config.values ?? [] });
        return query(...args);
      };
    });
    store = createPostgresStore({ pool });
    // The rows come first (one multi-row INSERT) and the ordered indexes with a later migrate, as for a deployment upgrading.
    await store.migrate([before]);
    await peek(
      `INSERT INTO signups (id, created_at, tenant, note)
       SELECT 's' || lpad(i::text, 6, '0'), $1::bigint + (i / 4) * 1000, 't' || (i % 10), NULL FROM generate_series(0, $2::int - 1) AS i`,
      [T0, ROWS],
    );
    await store.migrate([signups]);
    // What autovacuum does after a bulk load. Without statistics PostgreSQL guesses a few dozen rows
    // below a deep cursor, and may fetch them through a bitmap and sort them instead.
    await peek('ANALYZE signups');
  }, 60_000);
  afterAll(async () => {
    await store.close();
    await pool.end();
    await db.drop();
  });


  it('creates the ordered indexes on the populated table at the later migrate, keys compared bytewise, rows without the equality column left out', async () => {
    const indexes = await peek<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'signups' AND indexname LIKE '%_ord' ORDER BY indexname`);
    expect(indexes.map((index) => [index.indexname, index.indexdef.replace(/^.* USING btree /, '')])).toEqual([
      ['signups_created_at_ord', '(created_at, id COLLATE "C")'],
      ['signups_tenant_created_at_ord', '(tenant, created_at, id COLLATE "C") WHERE (tenant IS NOT NULL)'],
    ]);
  });

  it('reads every page from its ordered index, backwards, with no sort (EXPLAIN of the statements the store sends)', async () => {
    for (const [name, query] of Object.entries(pages)) {
      sent.length = 0;
      await store.page(signups, query);
      expect(sent, name).toHaveLength(1);
      const plan = (await peek<{ 'QUERY PLAN': string }>(`EXPLAIN ${sent[0]!.text}`, sent[0]!.values)).map((row) => row['QUERY PLAN']).join('\n');
      const index = query.where ? 'signups_tenant_created_at_ord' : 'signups_created_at_ord';
      expect(plan, name).toMatch(new RegExp(`^Limit .*\\n +-> +Index Scan Backward using ${index} on signups`));
      expect(plan, name).not.toMatch(/\bSort\b|Seq Scan|Bitmap/);
      if (query.after) expect(plan, name).toMatch(/Index Cond: .*ROW\(created_at, \(id\)::text\) < ROW\(/);
    }
  });

  it('gives the right rows for a page near the end as for the first page (how long each takes: the EXPLAIN above, and npm run bench)', async () => {
    expect(ids(await store.page(signups, pages.first!))).toEqual(newest(ROWS - 1, 50));
    expect(ids(await store.page(signups, pages.deep!))).toEqual(newest(99, 50));
    expect(ids(await store.page(signups, pages['deep, by tenant, in a range']!))).toEqual(newest(1993, 50, 10));
  });
});
