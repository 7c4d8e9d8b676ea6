import type pg from 'pg';
import {
  assertCountable,
  assertIndexed,
  DuplicateKeyError,
  StoreUnavailableError,
  type ColumnKind,
  type CounterState,
  type Row,
  type Store,
  type StoreOps,
  type StoreTx,
  type TransactionOptions,
  type Where,
} from '../contract.ts';
import { pgDriver } from './driver.ts';
import { createAppendBatcher, RowChangedError } from './append-batcher.ts';
import { createBatcher } from './batcher.ts';
import { COUNTER_BATCH, counterState, COUNTERS, incrementTierCalls, type TierCall } from './counters.ts';
import { decode, encode, encodeKey, encodeRow } from './encoding.ts';
import { translate, withDuplicateKeys } from './errors.ts';
import { createInvalidation } from './invalidation.ts';
import { createKeyReader } from './key-reader.ts';
import { layoutChangeRefused, layoutDdl, missingDdl, readLayout, SCHEMA } from './layout.ts';
import { createPipeline, type Pipeline } from './pipeline.ts';
import { createStatementNames, unnamedStatements } from './prepared.ts';
import { pageSql, placeholders, q, setClause, whereClause, type Compiled, type Runner, type Spec } from './sql.ts';
import { checkLimit, DEFAULT_LIMIT, planPage, validateSpec } from '../shared.ts';

/**
 * The Store contract on PostgreSQL, for several replicas sharing one database.
 *
 * Every primitive is one statement that PostgreSQL makes atomic by itself: `INSERT … ON CONFLICT DO
 * NOTHING` (insertIfAbsent), `UPDATE … WHERE key = $1 AND <where>` (compare-and-set), `DELETE …
 * RETURNING` (consumeOne), `DELETE … WHERE key IN (SELECT … FOR UPDATE SKIP LOCKED)` (takeDue) and an
 * upsert that computes the window in SQL (incrementWithin).
 *
 * Transactions run on one pooled connection at READ COMMITTED, and every read inside a transaction
 * takes row locks (`SELECT … FOR UPDATE`, or `FOR SHARE` for a `shared` read): what a transaction read
 * stays as read until it commits and concurrent writers wait, which is the contract. The connection
 * is in pg's pipeline mode, so that a transaction waits for as few answers as it can (`createPipeline`). SERIALIZABLE would also cover absent rows, but it
 * needs the whole transaction function re-run on a serialization failure, and the callers' functions
 * are not written to be run twice (counters would count twice). Counters go through their own small
 * pool, in autocommit, so a failed transaction keeps its increments and a transaction waiting for a
 * counter never waits for a connection held by another transaction.
 *
 * Group commit: a transaction that only appends rows takes no connection; its rows go out with those
 * of the other such transactions waiting, as one statement (`createAppendBatcher`). Counters are
 * batched the same way, one statement per tier for every call waiting (`incrementTierCalls`). A
 * rerunnable transaction (`TransactionOptions`) may read its first shared row without a lock and
 * append after it: its rows join the batch guarded by that row's version (`appendStatement`), and
 * it runs again, locking, when the row changed.
 *
 * Invalidation between replicas (`broadcast`/`subscribe`) is LISTEN/NOTIFY on one channel: NOTIFY
 * goes through the main pool after the caller's commit, and LISTEN holds one dedicated connection
 * (its own pool of one, or one taken from the caller's pool). When that connection is lost it is
 * re-opened with back-off, and every listener is then told that messages may have been missed.
 * Every store that receives another one's message acknowledges it (a NOTIFY addressed to the
 * sender) once its listeners have run, and `broadcast` resolves when its own message came back and
 * every other LISTEN session counted in `pg_stat_activity` acknowledged, or after `echoTimeoutMs`.
 */

/** The version of this store's own layout (counters, schema table). Bump it when that layout changes. */
export const POSTGRES_LAYOUT_VERSION = 1;
/** pg_advisory_xact_lock key: "authmd" in ASCII. Replicas starting together migrate one at a time. */
const MIGRATE_LOCK = 0x617574686d64;
const PURGE_BATCH = 1000;
/**
 * How much longer than its statement_timeout the client waits for a statement's answer. A database
 * that stops answering without closing the connection (a network partition, a frozen host) would
 * otherwise hold the request until TCP gives up, minutes later; past this, the database is taken as
 * unreachable and the connection is destroyed (docs/decisions.md).
 */
const QUERY_TIMEOUT_MARGIN_MS = 1000;

export type PostgresStoreOptions = (
  | {
      /** postgres://user@host:port/database */
      connectionString: string;
      /** Connections in the main pool (default 10). */
      max?: number;
      /** Per-statement limit in the database (default 5 s). */
      statementTimeoutMs?: number;
      /** How long to wait for a connection, new or pooled (default 2 s). */
      connectionTimeoutMs?: number;
    }
  | {
      /** A pool the caller configured (and closes). Counters use it too. */
      pool: pg.Pool;
    }
) & {
  /** How long a statement waits for a row lock before failing (default 10 s, the contract's lock timeout). */
  lockTimeoutMs?: number;
  /**
   * How long `broadcast` waits at most for its message to come back on this store's LISTEN connection
   * and to be acknowledged by every other listening store (default 200 ms).
   */
  echoTimeoutMs?: number;
  /**
   * How often the LISTEN connection repeats its `LISTEN` (default 5 s); one not answered within the
   * same time is taken as lost, so a silent database is noticed within twice this (0: never).
   */
  listenHeartbeatMs?: number;
  /**
   * Whether statements are prepared once per connection (default true). Turn it off behind a pooler
   * that hands each transaction another server connection without carrying prepared statements over
   * (PgBouncer in transaction mode before 1.21, or without `max_prepared_statements`).
   */
  preparedStatements?: boolean;
};

/** The database holds a layout newer than this code: running would risk corrupting it. */
export class SchemaVersionError extends Error {
  override readonly name = 'SchemaVersionError';
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(
      `the database's authmd schema is version ${found}, newer than this code knows (${known}); upgrade authmd before running it against this database`,
    );
  }
}

function checkVersion(found: number | undefined): void {
  if (found !== undefined && found > POSTGRES_LAYOUT_VERSION) throw new SchemaVersionError(found, POSTGRES_LAYOUT_VERSION);
}

export function createPostgresStore(options: PostgresStoreOptions): Store {
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  let ownPools: pg.Pool[] = [];
  let pool: pg.Pool;
  let counterPool: pg.Pool;
  let listenPool: pg.Pool;
  if ('pool' in options) {
    pool = options.pool;
    counterPool = options.pool;
    listenPool = options.pool;
  } else {
    const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
    const config: pg.PoolConfig = {
      connectionString: options.connectionString,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 2000,
      statement_timeout: statementTimeoutMs,
      // Client side: an answer that does not come (the database silent) fails as unavailable. 0 (no
      // statement timeout, as in PostgreSQL) sets no client limit either.
      query_timeout: statementTimeoutMs > 0 ? statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS : undefined,
      lock_timeout: lockTimeoutMs,
      idle_in_transaction_session_timeout: 60_000,
      idleTimeoutMillis: 30_000,
    };
    const { Pool } = pgDriver();
    // Pipeline mode: a transaction sends BEGIN, appended rows and COMMIT ahead of the answers (`createPipeline`).
    pool = new Pool({ ...config, max: options.max ?? 10, pipeline: true });
    // Counters commit without waiting for the WAL flush: the service-wide registration counter is one
    // row that every registration updates, and holding its lock through each fsync would let only one
    // registration per fsync through. A database crash may lose the last fraction of a second of
    // increments (a limit that counts slightly low); a crash of the service loses nothing.
    counterPool = new Pool({ ...config, max: 4, options: '-c synchronous_commit=off' });
    // LISTEN holds its connection for good: no statement or idle timeouts on it.
    listenPool = new Pool({ connectionString: options.connectionString, connectionTimeoutMillis: options.connectionTimeoutMs ?? 2000, max: 1, keepAlive: true });
    ownPools = [pool, counterPool, listenPool];
    // An idle connection that dies (database restart) must not crash the process; the next query reconnects.
    for (const p of ownPools) p.on('error', () => {});
  }

  const statement = options.preparedStatements === false ? unnamedStatements : createStatementNames();
  const compiled = new WeakMap<Spec, Compiled>();
  const migrated = new Map<string, Spec>();
  let closed = false;
  let layoutReady: Promise<void> | undefined;

  function compile(spec: Spec): Compiled {
    let c = compiled.get(spec);
    if (!c) {
      validateSpec(spec, [COUNTERS, SCHEMA]);
      const columns = Object.keys(spec.columns);
      c = { spec, table: q(spec.name), columns, selectList: columns.map(q).join(', ') };
      compiled.set(spec, c);
    }
    return c;
  }

  function checkOpen(): void {
    if (closed) throw new Error('the store is closed');
  }

  const invalidation = createInvalidation(listenPool, (text, values) => onPool(text, values), {
    echoTimeoutMs: options.echoTimeoutMs ?? 200,
    heartbeatMs: options.listenHeartbeatMs ?? 5000,
    isClosed: () => closed,
  });

  const onPool: Runner = async (text, values) => {
    checkOpen();
    try {
      return await pool.query<Row>(statement(text, values));
    } catch (error) {
      throw translate(error);
    }
  };

  const appendOnly = createAppendBatcher(onPool);
  const readByKey = createKeyReader(onPool);

  /**
   * Checked-out connections on which a statement found the database lost or silent (a query read
   * timeout: its answer may still come, late). Nothing more is sent on them, COMMIT least of all, and
   * they are destroyed on release, never pooled: the next query would read that late answer.
   */
  const lost = new WeakMap<pg.PoolClient, StoreUnavailableError>();

  async function withClient<T>(from: pg.Pool, f: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const connection = lazyConnection(from);
    try {
      return await f(await connection.client());
    } finally {
      connection.release();
    }
  }

  /**
   * A connection taken from the pool when it is first needed, and given back by `release`: a
   * transaction that only appends rows never takes one (its rows go to the append batcher).
   */
  function lazyConnection(from: pg.Pool): { client(): Promise<pg.PoolClient>; run: Runner; release(): void } {
    let taken: Promise<pg.PoolClient> | undefined;
    let held: pg.PoolClient | undefined;
    // A checked-out client has no pool listener: a connection lost between two statements of a
    // transaction is emitted as 'error' on the client, which would crash the process unheard. It is
    // recorded as lost instead; the next statement fails (unavailable), and the client is destroyed on release.
    const onError = (error: Error) => {
      if (held && !lost.has(held)) lost.set(held, new StoreUnavailableError('The connection to the database was lost.', { cause: error }));
    };
    const connect = async (): Promise<pg.PoolClient> => {
      checkOpen();
      try {
        held = await from.connect();
      } catch (error) {
        throw translate(error);
      }
      held.on('error', onError);
      return held;
    };
    const client = () => (taken ??= connect());
    return {
      client,
      // Statements sent in one turn keep their order: each waits for the same connection, in turn.
      run: async (text, values) => clientRunner(await client())(text, values),
      release() {
        if (!held) return;
        held.removeListener('error', onError);
        held.release(lost.get(held));
        held = undefined;
      },
    };
  }

  /** Creates the store's own tables and checks their version, once per store (again after a failure). */
  function ensureLayout(): Promise<void> {
    layoutReady ??= migrateTables([]).catch((error: unknown) => {
      layoutReady = undefined;
      throw error;
    });
    return layoutReady;
  }

  /**
   * Brings the database to the layout for `specs`. A complete layout of the right version (every
   * start but the first after an upgrade) costs two catalog reads and no lock; otherwise the missing
   * pieces are made under the migration lock, after reading the catalog again (another replica may
   * have made them meanwhile).
   */
  async function migrateTables(specs: readonly Spec[]): Promise<void> {
    for (const spec of specs) compile(spec);
    const ddl = layoutDdl(specs);
    await withClient(pool, async (client) => {
      const run = clientRunner(client);
      const seen = await readLayout(run, ddl);
      checkVersion(seen.version);
      if (seen.version === POSTGRES_LAYOUT_VERSION && missingDdl(ddl, seen).length === 0) return;
      await run('BEGIN');
      try {
        await run('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
        const layout = await readLayout(run, ddl);
        checkVersion(layout.version);
        for (const statement of missingDdl(ddl, layout)) {
          await run(statement).catch((error: unknown) => {
            throw layoutChangeRefused(statement, error);
          });
        }
        if (layout.version === undefined) await run(`INSERT INTO ${SCHEMA} (id, version) VALUES (1, $1)`, [POSTGRES_LAYOUT_VERSION]);
        else if (layout.version < POSTGRES_LAYOUT_VERSION) await run(`UPDATE ${SCHEMA} SET version = $1 WHERE id = 1`, [POSTGRES_LAYOUT_VERSION]);
        await run('COMMIT');
      } catch (error) {
        await run('ROLLBACK').catch(() => {}); // on a lost connection, sends nothing (see clientRunner)
        throw error;
      }
    });
    for (const spec of specs) migrated.set(spec.name, spec);
  }

  /** A counter statement: in autocommit on the counter pool, even inside a transaction (a rollback keeps what it did). */
  async function onCounterPool(text: string, values: unknown[]): Promise<pg.QueryResult<Row>> {
    checkOpen();
    await ensureLayout();
    try {
      return await counterPool.query<Row>(statement(text, values));
    } catch (error) {
      throw translate(error);
    }
  }

  /**
   * Counters, batched like appends: the tiered increments of concurrent requests go out together,
   * tier by tier, each counter incremented once per statement by the number of requests that count
   * it. The service-wide registration counter is one row that every registration updates; one
   * update per batch instead of one per request is what keeps it from serialising registrations.
   */
  const incrementBatched = createBatcher<TierCall, CounterState[]>({
    inFlight: 1,
    cost: () => 1,
    budget: COUNTER_BATCH,
    async send(batch) {
      const states = await incrementTierCalls(
        batch.map((waiting) => waiting.input),
        (text, values = []) => onCounterPool(text, values),
      );
      batch.forEach((waiting, i) => waiting.resolve(states[i]!));
    },
  });

  /**
   * `inTx`: reads lock the rows they return. A failed statement aborts a PostgreSQL transaction, and
   * the contract lets a caller catch a DuplicateKeyError and go on: inserts never fail on a duplicate
   * (`ON CONFLICT DO NOTHING`, then the duplicate is named), and only an update that sets a unique
   * column, the one write left that can collide, runs under a savepoint. A savepoint costs two
   * round trips, a third of a registration's statements when every write had one.
   */
  function makeOps(run: Runner, inTx: Pipeline | undefined): StoreOps {
    const lock = inTx ? ' FOR UPDATE' : '';
    const guarded = async <T>(t: Spec, f: () => Promise<T>): Promise<T> => {
      if (!inTx) return withDuplicateKeys(t, f);
      await run('SAVEPOINT authmd_write');
      try {
        const value = await withDuplicateKeys(t, f);
        await run('RELEASE SAVEPOINT authmd_write');
        return value;
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) await run('ROLLBACK TO SAVEPOINT authmd_write');
        throw error;
      }
    };

    const change = (t: Spec, column: string, value: unknown, patch: Row, where: Where<any> | undefined): Promise<number> => {
      const c = compile(t);
      const params: unknown[] = [];
      const set = setClause(t, patch, params);
      params.push(encodeKey(value));
      const sql = `UPDATE ${c.table} SET ${set} WHERE ${q(column)} = $${params.length}${whereClause(t, where, params)}`;
      const update = async () => (await run(sql, params)).rowCount ?? 0;
      const collides = Object.keys(patch).some((name) => name === t.key || (t.unique ?? []).includes(name));
      // An update that sets no key or unique column cannot collide.
      return collides ? guarded(t, update) : update();
    };

    /**
     * `INSERT … ON CONFLICT DO NOTHING`: true when the row went in. Otherwise nothing failed (the
     * transaction goes on), and `duplicateOf` says which value was taken.
     */
    const insertUnlessTaken = async (t: Spec, row: Row): Promise<boolean> => {
      const c = compile(t);
      const sql = `INSERT INTO ${c.table} (${c.selectList}) VALUES (${placeholders(c)}) ON CONFLICT DO NOTHING RETURNING ${q(t.key)}`;
      // Without a conflict target, no unique value can make it fail.
      return (await run(sql, encodeRow(c, row))).rows.length > 0;
    };

    /** The column whose value `row` repeats: its key, else the first unique column another row holds. */
    const duplicateOf = async (t: Spec, row: Row): Promise<string | undefined> => {
      const c = compile(t);
      for (const column of [t.key, ...(t.unique ?? [])]) {
        if (row[column] === null || row[column] === undefined) continue;
        const { rows } = await run(`SELECT 1 FROM ${c.table} WHERE ${q(column)} = $1 LIMIT 1`, [encode(t.columns[column] as ColumnKind, row[column])]);
        if (rows.length > 0) return column;
      }
      return undefined;
    };

    const insert = async (t: Spec, row: Row): Promise<void> => {
      if (await insertUnlessTaken(t, row)) return;
      throw new DuplicateKeyError(t.name, (await duplicateOf(t, row)) ?? t.key);
    };

    const select = async (t: Spec, column: string, value: unknown, limit: number, rowLock = lock) => {
      const c = compile(t);
      const { rows } = await run(`SELECT ${c.selectList} FROM ${c.table} WHERE ${q(column)} = $1 LIMIT $2${rowLock}`, [encodeKey(value), limit]);
      return rows.map((row) => decode(t, row));
    };

    const ops: StoreOps = {
      get: async (t, key, options) => {
        // Without locks (outside a transaction, or a rerunnable one's first shared read), lookups by key are batched.
        const c = compile(t);
        const unlocked = inTx ? (options?.shared ? inTx.readUnlocked(c, encodeKey(key)) : undefined) : readByKey(c, encodeKey(key));
        if (unlocked) {
          const row = await unlocked;
          return row && decode(t, row);
        }
        return (await select(t, t.key, key, 1, inTx && options?.shared ? ' FOR SHARE' : lock))[0];
      },

      findOne: async (t, column, value) => {
        assertIndexed(t, column, true);
        return (await select(t, column, value, 1))[0];
      },

      findMany: async (t, column, value, limit = DEFAULT_LIMIT) => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        return select(t, column, value, limit);
      },

      insert,

      append: async (t, row) => {
        if (!inTx) return insert(t, row);
        const c = compile(t);
        inTx.append(c, encodeRow(c, row));
      },

      insertIfAbsent: async (t, row) => {
        if (await insertUnlessTaken(t, row)) return true;
        // Absent means "no row with this key": a unique value held by another row is still a duplicate.
        const taken = await duplicateOf(t, row);
        if (taken !== undefined && taken !== t.key) throw new DuplicateKeyError(t.name, taken);
        return false;
      },

      update: async (t, key, patch, where) => (await change(t, t.key, key, patch, where)) > 0,

      updateWhere: async (t, column, value, patch, where) => {
        assertIndexed(t, column, false);
        return change(t, column, value, patch, where);
      },

      consumeOne: async (t, key, where) => {
        const c = compile(t);
        const params: unknown[] = [encodeKey(key)];
        const sql = `DELETE FROM ${c.table} WHERE ${q(t.key)} = $1${whereClause(t, where, params)} RETURNING ${c.selectList}`;
        const row = (await run(sql, params)).rows[0];
        return row && decode(t, row);
      },

      takeDue: async (t, column, now, limit) => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const c = compile(t);
        const key = q(t.key);
        const { rows } = await run(
          `DELETE FROM ${c.table} WHERE ${key} IN (SELECT ${key} FROM ${c.table} WHERE ${q(column)} < $1 ORDER BY ${q(column)} LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING ${c.selectList}`,
          [now, limit],
        );
        // RETURNING gives no order guarantee.
        return rows.map((row) => decode(t, row)).sort((a, b) => (a[column] as number) - (b[column] as number));
      },

      findDue: async (t, column, now, limit) => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const c = compile(t);
        const { rows } = await run(`SELECT ${c.selectList} FROM ${c.table} WHERE ${q(column)} < $1 ORDER BY ${q(column)} LIMIT $2${lock}`, [now, limit]);
        return rows.map((row) => decode(t, row));
      },

      delete: async (t, key) => {
        const c = compile(t);
        return ((await run(`DELETE FROM ${c.table} WHERE ${q(t.key)} = $1`, [encodeKey(key)])).rowCount ?? 0) > 0;
      },

      page: async (t, query) => {
        const { index, bounds } = planPage(t, query);
        const params: unknown[] = [];
        const { rows } = await run(pageSql(compile(t), index, query, bounds, params) + lock, params);
        return rows.map((row) => decode(t, row));
      },

      // No row locks: an aggregate cannot take them. What it counted may change before the commit.
      count: async (t, where) => {
        assertCountable(t, where);
        const c = compile(t);
        const params: unknown[] = [];
        const cond = whereClause(t, where, params);
        const { rows } = await run(`SELECT count(*) AS n FROM ${c.table} WHERE ${cond.slice(' AND '.length)}`, params);
        return Number(rows[0]!.n);
      },

      incrementWithin: async (key, windowMs, now): Promise<CounterState> => {
        checkOpen();
        return (await incrementBatched({ tiers: [{ key, windowMs, limit: Infinity }], now }))[0]!;
      },

      incrementTiers: async (tiers, now) => {
        checkOpen();
        return tiers.length === 0 ? [] : incrementBatched({ tiers, now });
      },

      peekCounter: async (key, now) => {
        const row = (await onCounterPool(`SELECT count, reset_at FROM ${COUNTERS} WHERE key = $1 AND reset_at > $2`, [encodeKey(key), now])).rows[0];
        return row && counterState(row);
      },

      clearCounter: async (key) => ((await onCounterPool(`DELETE FROM ${COUNTERS} WHERE key = $1`, [encodeKey(key)])).rowCount ?? 0) > 0,
    };
    return ops;
  }

  /** One run of a transaction; `optimistic`: its first shared read may go without a lock (`TransactionOptions`). */
  async function runTransaction<T>(fn: (tx: StoreTx) => Promise<T>, optimistic: boolean): Promise<T> {
    checkOpen();
    const connection = lazyConnection(pool);
    let open = true;
    const pipeline = createPipeline(connection.run, appendOnly, optimistic ? readByKey : undefined);
    const run: Runner = (text, values) => (open ? pipeline.run(text, values) : Promise.reject(new Error('the transaction has ended')));
    const tx: StoreTx = {
      ...makeOps(run, pipeline),
      transaction: (inner) => (open ? inner(tx) : Promise.reject(new Error('the transaction has ended'))),
    };
    try {
      const value = await fn(tx);
      open = false;
      await pipeline.commit();
      return value;
    } catch (error) {
      open = false;
      await pipeline.rollback();
      throw error;
    } finally {
      connection.release();
    }
  }

  function clientRunner(client: pg.PoolClient): Runner {
    return async (text, values) => {
      const gone = lost.get(client);
      if (gone) throw gone;
      try {
        return await client.query<Row>(statement(text, values));
      } catch (error) {
        const translated = translate(error);
        if (translated instanceof StoreUnavailableError) lost.set(client, translated);
        throw translated;
      }
    };
  }

  return {
    kind: 'postgres',
    ...makeOps(onPool, undefined),

    async migrate(specs) {
      checkOpen();
      for (const spec of specs) compile(spec);
      await migrateTables(specs);
      layoutReady ??= Promise.resolve();
    },

    /**
     * Round trips are what a transaction costs here (see `createPipeline`): one that only appends
     * rows shares one statement with the others waiting (the append batcher), one that reads and
     * then appends is two round trips on a connection of its own.
     */
    async transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T> {
      if (!options?.rerunnable) return runTransaction(fn, false);
      try {
        return await runTransaction(fn, true);
      } catch (error) {
        // The row read without a lock changed before the transaction wrote: again, with the lock.
        if (error instanceof RowChangedError) return runTransaction(fn, false);
        throw error;
      }
    },

    async purgeExpired(now) {
      checkOpen();
      let deleted = 0;
      for (const spec of migrated.values()) {
        if (!spec.expiresAt) continue;
        const c = compile(spec);
        const exp = q(spec.expiresAt);
        const key = q(spec.key);
        for (;;) {
          const { rowCount } = await onPool(
            `DELETE FROM ${c.table} WHERE ${key} IN (SELECT ${key} FROM ${c.table} WHERE ${exp} < $1 LIMIT ${PURGE_BATCH} FOR UPDATE SKIP LOCKED)`,
            [now],
          );
          deleted += rowCount ?? 0;
          if ((rowCount ?? 0) < PURGE_BATCH) break;
        }
      }
      await ensureLayout();
      const { rowCount } = await onPool(`DELETE FROM ${COUNTERS} WHERE reset_at <= $1`, [now]);
      return deleted + (rowCount ?? 0);
    },

    broadcast: (topic, message) => {
      checkOpen();
      return invalidation.broadcast(topic, message);
    },

    subscribe: (topic, listener) => {
      checkOpen();
      return invalidation.subscribe(topic, listener);
    },

    async close() {
      if (closed) return;
      closed = true;
      invalidation.close();
      const pools = ownPools;
      ownPools = [];
      await Promise.all(pools.map((p) => p.end()));
    },
  };
}

