import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  assertCountable,
  assertIndexed,
  DuplicateKeyError,
  StoreUnavailableError,
  type ColumnKind,
  type CounterState,
  type CounterTier,
  type InvalidationListener,
  type OrderedIndex,
  type PageQuery,
  type Row,
  type Store,
  type StoreOps,
  type StoreTx,
  type Subscription,
  type TableSpec,
  type TransactionOptions,
  type Where,
} from '../contract.ts';
import { createBatcher, type Waiting } from './batcher.ts';
import { createStatementNames, unnamedStatements } from './prepared.ts';
import { checkLimit, DEFAULT_LIMIT, kindOf, orderedIndexName, orderedIndexPredicate, planPage, validateSpec, type PageBounds } from '../shared.ts';

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

type Spec = TableSpec<any>;

const COUNTERS = 'authmd_counters';
const SCHEMA = 'authmd_schema';
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
const SQL_TYPE: Record<ColumnKind, string> = { text: 'TEXT', integer: 'BIGINT', boolean: 'BOOLEAN', json: 'JSONB' };

const q = (name: string): string => `"${name}"`;

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

interface Compiled {
  spec: Spec;
  table: string;
  columns: string[];
  selectList: string;
}

/** Something that runs a query: the pool, or a transaction's client. */
type Runner = (text: string, values?: unknown[]) => Promise<pg.QueryResult<Row>>;

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
    // Pipeline mode: a transaction sends BEGIN, appended rows and COMMIT ahead of the answers (`createPipeline`).
    pool = new pg.Pool({ ...config, max: options.max ?? 10, pipeline: true });
    // Counters commit without waiting for the WAL flush: the service-wide registration counter is one
    // row that every registration updates, and holding its lock through each fsync would let only one
    // registration per fsync through. A database crash may lose the last fraction of a second of
    // increments (a limit that counts slightly low); a crash of the service loses nothing.
    counterPool = new pg.Pool({ ...config, max: 4, options: '-c synchronous_commit=off' });
    // LISTEN holds its connection for good: no statement or idle timeouts on it.
    listenPool = new pg.Pool({ connectionString: options.connectionString, connectionTimeoutMillis: options.connectionTimeoutMs ?? 2000, max: 1, keepAlive: true });
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

  async function migrateTables(specs: readonly Spec[]): Promise<void> {
    for (const spec of specs) compile(spec);
    await withClient(pool, async (client) => {
      const run = clientRunner(client);
      await run('BEGIN');
      try {
        await run('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
        await run(`CREATE TABLE IF NOT EXISTS ${SCHEMA} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`);
        const found = (await run(`SELECT version FROM ${SCHEMA} WHERE id = 1`)).rows[0]?.version as number | undefined;
        if (found !== undefined && found > POSTGRES_LAYOUT_VERSION) throw new SchemaVersionError(found, POSTGRES_LAYOUT_VERSION);
        if (found === undefined) await run(`INSERT INTO ${SCHEMA} (id, version) VALUES (1, $1)`, [POSTGRES_LAYOUT_VERSION]);
        else if (found < POSTGRES_LAYOUT_VERSION) await run(`UPDATE ${SCHEMA} SET version = $1 WHERE id = 1`, [POSTGRES_LAYOUT_VERSION]);
        await run(`CREATE TABLE IF NOT EXISTS ${COUNTERS} (key TEXT PRIMARY KEY NOT NULL, count BIGINT NOT NULL, reset_at BIGINT NOT NULL)`);
        await run(`CREATE INDEX IF NOT EXISTS ${COUNTERS}_reset_at ON ${COUNTERS} (reset_at)`);
        for (const spec of specs) {
          const c = compile(spec);
          const definition = (col: string) => `${q(col)} ${col === spec.key ? 'TEXT PRIMARY KEY NOT NULL' : SQL_TYPE[spec.columns[col] as ColumnKind]}`;
          await run(`CREATE TABLE IF NOT EXISTS ${c.table} (${c.columns.map(definition).join(', ')})`);
          for (const col of c.columns) if (col !== spec.key) await run(`ALTER TABLE ${c.table} ADD COLUMN IF NOT EXISTS ${definition(col)}`);
          for (const col of spec.unique ?? []) await run(`CREATE UNIQUE INDEX IF NOT EXISTS ${q(`${spec.name}_${col}_unique`)} ON ${c.table} (${q(col)})`);
          for (const col of [...(spec.indexed ?? []), ...(spec.expiresAt ? [spec.expiresAt] : [])]) {
            if (spec.unique?.includes(col)) continue;
            await run(`CREATE INDEX IF NOT EXISTS ${q(`${spec.name}_${col}_idx`)} ON ${c.table} (${q(col)})`);
          }
          for (const index of spec.ordered ?? []) {
            const columns = [...(index.eq === undefined ? [] : [q(index.eq)]), orderedColumn(spec, index.by), orderedColumn(spec, spec.key)].join(', ');
            await run(`CREATE INDEX IF NOT EXISTS ${q(orderedIndexName(spec, index))} ON ${c.table} (${columns})${orderedIndexPredicate(index, q)}`);
          }
        }
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

const CHANNEL = 'authmd_invalidation';
/** NOTIFY payloads are limited to 8000 bytes; the envelope takes some. */
const MAX_MESSAGE_BYTES = 7000;
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5000;

interface Envelope {
  /** The sending store. */
  s: string;
  /** Its sequence number, to recognise its own message when it comes back. */
  n: number;
  t?: string;
  m?: string;
  /** In an acknowledgement: the store whose message number `n` was received. */
  to?: string;
}

interface Pending {
  echoed: boolean;
  peers: number;
  acks: Set<string>;
  resolve(): void;
}

/**
 * LISTEN/NOTIFY on one channel, with a LISTEN connection that comes back after it is lost. A
 * connection sends nothing while it only listens, so a database that stops answering without closing
 * it would go unnoticed (TCP keepalive takes hours): a heartbeat query finds it out.
 */
function createInvalidation(
  listenPool: pg.Pool,
  run: Runner,
  { echoTimeoutMs, heartbeatMs, isClosed }: { echoTimeoutMs: number; heartbeatMs: number; isClosed: () => boolean },
) {
  const sender = randomUUID();
  const topics = new Map<string, Set<InvalidationListener>>();
  const pending = new Map<number, Pending>();
  const settle = (p: Pending | undefined) => {
    if (p && p.echoed && p.acks.size >= p.peers) p.resolve();
  };
  const notify = (envelope: Envelope) => run('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(envelope)]);
  let seq = 0;
  let client: pg.PoolClient | undefined;
  let connecting = false;
  let retryMs = RECONNECT_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let release: (() => void) | undefined;

  const call = (listener: InvalidationListener, message: string | undefined) => {
    try {
      listener(message);
    } catch {
      // A listener's failure is its own; the others still hear the message.
    }
  };

  function deliver(payload: string | undefined): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload ?? '') as Envelope;
    } catch {
      return; // not ours
    }
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.s !== 'string') return;
    if (envelope.to !== undefined) {
      const p = envelope.to === sender ? pending.get(envelope.n) : undefined;
      p?.acks.add(envelope.s);
      return settle(p);
    }
    if (typeof envelope.t !== 'string' || typeof envelope.m !== 'string') return;
    // Listeners run synchronously (they clear caches, or start a re-read), then the sender hears back.
    for (const listener of [...(topics.get(envelope.t) ?? [])]) call(listener, envelope.m);
    if (envelope.s === sender) {
      const p = pending.get(envelope.n);
      if (p) p.echoed = true;
      settle(p);
    } else if (!isClosed()) {
      notify({ s: sender, n: envelope.n, to: envelope.s }).catch(() => {}); // the sender stops waiting at its bound anyway
    }
  }

  /** The other LISTEN sessions on this database (0 when they cannot be seen, e.g. without pg_read_all_stats). */
  async function peers(): Promise<number> {
    try {
      const { rows } = await run(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND query = $1`,
        [`LISTEN ${CHANNEL}`],
      );
      return Math.max(0, Number(rows[0]?.n ?? 0) - 1);
    } catch {
      return 0;
    }
  }

  function scheduleReconnect(): void {
    if (isClosed() || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, retryMs);
    retryTimer.unref();
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
  }

  async function connect(): Promise<void> {
    if (isClosed() || client || connecting || topics.size === 0) return;
    connecting = true;
    let candidate: pg.PoolClient;
    try {
      candidate = await listenPool.connect();
    } catch {
      connecting = false;
      scheduleReconnect();
      return;
    }
    let released = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const drop = (error?: Error) => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      candidate.removeListener('notification', onNotification);
      if (client === candidate) client = undefined;
      release = undefined;
      // Destroyed, never returned to a pool: a connection that LISTENs must not serve queries.
      candidate.release(error ?? true);
    };
    const onNotification = (n: pg.Notification) => {
      if (n.channel === CHANNEL) deliver(n.payload);
    };
    const onLost = () => {
      drop(new Error('the LISTEN connection was lost'));
      scheduleReconnect();
    };
    candidate.on('error', onLost);
    candidate.on('end', onLost);
    candidate.on('notification', onNotification);
    try {
      await candidate.query(`LISTEN ${CHANNEL}`);
    } catch {
      connecting = false;
      onLost();
      return;
    }
    connecting = false;
    if (released) return;
    if (isClosed()) return drop();
    client = candidate;
    release = () => drop();
    retryMs = RECONNECT_MIN_MS;
    if (heartbeatMs > 0) {
      let answered = true;
      heartbeat = setInterval(() => {
        if (!answered) return; // the previous one is still within its bound
        answered = false;
        const silent = setTimeout(onLost, heartbeatMs);
        silent.unref();
        // LISTEN again, not SELECT 1: `peers()` finds the listening sessions by their last statement.
        candidate.query(`LISTEN ${CHANNEL}`).then(
          () => {
            clearTimeout(silent);
            answered = true;
          },
          () => {
            clearTimeout(silent);
            onLost();
          },
        );
      }, heartbeatMs);
      heartbeat.unref();
    }
    // Whatever was broadcast while no connection listened is lost: every cache is stale.
    for (const listeners of [...topics.values()]) for (const listener of [...listeners]) call(listener, undefined);
  }

  return {
    async broadcast(topic: string, message: string): Promise<void> {
      const n = ++seq;
      const envelope: Envelope = { s: sender, n, t: topic, m: message };
      if (Buffer.byteLength(JSON.stringify(envelope)) > MAX_MESSAGE_BYTES) throw new RangeError(`an invalidation message is limited to ${MAX_MESSAGE_BYTES} bytes`);
      let timer: NodeJS.Timeout | undefined;
      // Without a live LISTEN connection there is nothing to wait for: the message is only sent.
      const others = client ? await peers() : 0;
      const delivered = client
        ? new Promise<void>((resolve) => {
            pending.set(n, { echoed: false, peers: others, acks: new Set(), resolve });
            timer = setTimeout(resolve, echoTimeoutMs);
          })
        : undefined;
      try {
        await notify(envelope);
        await delivered;
      } finally {
        clearTimeout(timer);
        pending.delete(n);
      }
    },

    subscribe(topic: string, listener: InvalidationListener): Subscription {
      let listeners = topics.get(topic);
      if (!listeners) topics.set(topic, (listeners = new Set()));
      // Each subscription is its own entry, even for a listener given twice.
      const entry: InvalidationListener = (message) => listener(message);
      listeners.add(entry);
      void connect();
      return {
        get live() {
          return client !== undefined;
        },
        close() {
          listeners.delete(entry);
          if (listeners.size === 0 && topics.get(topic) === listeners) topics.delete(topic);
        },
      };
    },

    close(): void {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      release?.();
      for (const p of pending.values()) p.resolve();
      pending.clear();
    },
  };
}

/** PostgreSQL error classes and client errors that mean "the database cannot be reached right now". */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

function translate(error: unknown): unknown {
  if (error instanceof StoreUnavailableError || error instanceof DuplicateKeyError) return error;
  const e = error as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (
    UNAVAILABLE_CODES.has(code) ||
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin_shutdown
    code === '57P02' || // crash_shutdown
    code === '57P03' || // cannot_connect_now
    code === '53300' || // too_many_connections
    /timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|Query read timeout/i.test(message)
  ) {
    return new StoreUnavailableError(`PostgreSQL is unavailable: ${message}`, { cause: error });
  }
  if (code === '55P03' || code === '57014') {
    // lock_not_available, query_canceled (statement_timeout): a wait that ended, never a hang.
    return new Error(
      `PostgreSQL gave up waiting (${message}): a slow statement, a transaction holding rows too long, or code inside a transaction that used the store instead of the transaction handle`,
      { cause: error },
    );
  }
  return error;
}

/** Maps unique violations (23505) to DuplicateKeyError, naming the column from the constraint name. */
async function withDuplicateKeys<T>(spec: Spec, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (error) {
    throw asDuplicateKey(spec, error);
  }
}

function asDuplicateKey(spec: Spec, error: unknown): unknown {
  const e = error as { code?: unknown; constraint?: unknown };
  if (e.code !== '23505') return error;
  const constraint = typeof e.constraint === 'string' ? e.constraint : '';
  const column = (spec.unique ?? []).find((col) => constraint === `${spec.name}_${col}_unique`) ?? spec.key;
  return new DuplicateKeyError(spec.name, column);
}

/** Calls of `incrementTiers` per counter batch. */
const COUNTER_BATCH = 512;

/** One call of `incrementTiers` (`incrementWithin` is one tier without a limit). */
interface TierCall {
  tiers: readonly CounterTier[];
  now: number;
}

/**
 * Adds `k` to each counter, or starts it again at `k` when its window ended by `now`. Keys go in
 * sorted, so that two such statements, from two replicas, lock their rows in one order.
 */
const INCREMENT_BY_SQL = `WITH v (key, k, now, reset_at) AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]))
  INSERT INTO ${COUNTERS} AS c (key, count, reset_at) SELECT key, k, reset_at FROM v ORDER BY key
  ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.reset_at <= (SELECT now FROM v WHERE v.key = EXCLUDED.key) THEN EXCLUDED.count ELSE c.count + EXCLUDED.count END,
    reset_at = CASE WHEN c.reset_at <= (SELECT now FROM v WHERE v.key = EXCLUDED.key) THEN EXCLUDED.reset_at ELSE c.reset_at END
  RETURNING key, count, reset_at`;

/**
 * The tiered increments of several calls, one statement per tier: tier i of every call still
 * counting (its tier i-1 within its limit), each counter once, by the number of calls naming it.
 * The calls naming one counter get consecutive counts, in their order. A counter counts them at the
 * latest of their `now`s: calls of one batch arrived within a few milliseconds of each other.
 */
async function incrementTierCalls(calls: readonly TierCall[], run: Runner): Promise<CounterState[][]> {
  const states: CounterState[][] = calls.map(() => []);
  for (let tier = 0; ; tier++) {
    const counters = new Map<string, { now: number; resetAt: number; calls: number[] }>();
    calls.forEach((call, i) => {
      const current = call.tiers[tier];
      if (!current || (tier > 0 && states[i]![tier - 1]!.count > call.tiers[tier - 1]!.limit)) return;
      const key = encodeKey(current.key) as string;
      const counter = counters.get(key);
      if (!counter) counters.set(key, { now: call.now, resetAt: call.now + current.windowMs, calls: [i] });
      else {
        counter.calls.push(i);
        if (call.now > counter.now) Object.assign(counter, { now: call.now, resetAt: call.now + current.windowMs });
      }
    });
    if (counters.size === 0) return states;
    const keys = [...counters.keys()];
    const { rows } = await run(INCREMENT_BY_SQL, [
      keys,
      keys.map((key) => counters.get(key)!.calls.length),
      keys.map((key) => counters.get(key)!.now),
      keys.map((key) => counters.get(key)!.resetAt),
    ]);
    for (const row of rows) {
      const counter = counters.get(row.key as string)!;
      const { count, resetAt } = counterState(row);
      counter.calls.forEach((i, j) => states[i]!.push({ count: count - counter.calls.length + 1 + j, resetAt }));
    }
  }
}

function counterState(row: Row): CounterState {
  return { count: Number(row.count), resetAt: Number(row.reset_at) };
}

/**
 * Text in an ordered index, and in the queries it serves, compares byte by byte (`COLLATE "C"`): the
 * same order as SQLite's, whatever the database's locale, and a row comparison PostgreSQL can seek to
 * in the index only when its collation is the index's.
 */
function orderedColumn(spec: Spec, column: string): string {
  return spec.columns[column] === 'text' ? `${q(column)} COLLATE "C"` : q(column);
}

/**
 * One index range, read backwards: `eq = $n` pins the group, `(by, key) < ($n, $m)` is where the page
 * starts and `by >= $n` (or `by IS NOT NULL`) where it stops; no sort. Its values go into `params`.
 */
function pageSql(c: Compiled, index: OrderedIndex<any>, query: PageQuery<any>, bounds: PageBounds, params: unknown[]): string {
  const spec = c.spec;
  const [by, key] = [orderedColumn(spec, index.by), orderedColumn(spec, spec.key)];
  const conditions: string[] = [];
  if (index.eq !== undefined) conditions.push(`${q(index.eq)} = $${params.push(encode(spec.columns[index.eq] as ColumnKind, query.where!.value))}`);
  if (bounds.from === undefined) conditions.push(`${q(index.by)} IS NOT NULL`);
  else conditions.push(`${q(index.by)} >= $${params.push(bounds.from)}`);
  if (bounds.below) {
    const value = params.push(encode(spec.columns[index.by] as ColumnKind, bounds.below.value));
    conditions.push(`(${by}, ${key}) < ($${value}, $${params.push(encodeKey(bounds.below.key))})`);
  }
  return `SELECT ${c.selectList} FROM ${c.table} WHERE ${conditions.join(' AND ')} ORDER BY ${by} DESC, ${key} DESC LIMIT $${params.push(query.limit)}`;
}

/**
 * A transaction's statements on its connection, sent so that it waits for as few answers as it can:
 * - BEGIN is sent only with the transaction's first statement, ahead of it (pipeline mode);
 * - appended rows are held until the next statement, then sent ahead of it as one INSERT;
 * - at the commit, the rows still held go ahead of COMMIT; and a transaction that did nothing but
 *   append hands them to `appendOnly` (the append batcher), without BEGIN or COMMIT: PostgreSQL
 *   makes one statement atomic alone.
 * A statement sent ahead is answered before the next one; its failure is reported in place of the
 * next one's answer (PostgreSQL refuses every statement after a failure in a transaction). On a
 * connection that is not in pipeline mode, statements are queued instead, with the same outcome.
 */
interface Pipeline {
  append(c: Compiled, values: unknown[]): void;
  /**
   * A rerunnable transaction's first statement, when it is a shared read of one row: the row read
   * without a lock, on any connection, its version kept as the transaction's guard. Undefined when
   * the read must lock as usual.
   */
  readUnlocked(c: Compiled, key: unknown): Promise<Row | undefined> | undefined;
  /** Sends a statement and answers it, after every statement sent ahead of it answered without failing. */
  run: Runner;
  commit(): Promise<void>;
  /** Ends the transaction, if it began. On a lost connection it sends nothing (clientRunner): destroying the connection ends it. */
  rollback(): Promise<void>;
}

function createPipeline(base: Runner, appendOnly: (item: AppendOnly) => Promise<void>, unlocked?: KeyReader): Pipeline {
  let begun = false;
  let held: HeldRow[] = [];
  let mayReadUnlocked = unlocked !== undefined;
  let guard: Guard | undefined;
  // Once the guarded row was found changed, nothing more may go out: the transaction runs again.
  let changed = false;
  let ahead: Promise<void>[] = [];
  // The first failure: once a statement failed, PostgreSQL refuses every later one of the transaction.
  let failed: { error: unknown } | undefined;

  const sendAhead = (text: string, values?: unknown[], failure: (error: unknown) => unknown = (error) => error) => {
    ahead.push(
      base(text, values).then(
        () => {},
        (error: unknown) => {
          failed ??= { error: failure(error) };
        },
      ),
    );
  };

  /** BEGIN once, then the held rows, ahead of the statement about to be sent. */
  const sendHeld = () => {
    if (!begun) {
      begun = true;
      sendAhead('BEGIN');
    }
    const batches = statementsFor(held);
    held = [];
    for (const rows of batches) {
      const insert = insertRows(rows);
      sendAhead(insert.text, insert.values, (error) => duplicateIn(rows, error));
    }
  };

  /** Before the first statement that needs the connection: the guarded row, locked as it was read, or the rerun. */
  const lockGuard = async (): Promise<void> => {
    const { c, key, xmin } = guard!;
    guard = undefined;
    const { rows } = await run(`SELECT 1 FROM ${c.table} WHERE ${q(c.spec.key)} = $1 AND xmin = $2::xid FOR SHARE`, [key, xmin]);
    if (rows.length === 0) {
      changed = true;
      throw new RowChangedError();
    }
  };

  const run: Runner = async (text, values) => {
    if (changed) throw new RowChangedError();
    if (guard && !begun) await lockGuard();
    sendHeld();
    const answer = base(text, values);
    if (ahead.length > 0) {
      const pending = ahead;
      ahead = [];
      await Promise.all(pending);
    }
    if (failed) {
      answer.catch(() => {}); // refused as part of a failed transaction; the first failure is the one to report
      throw failed.error;
    }
    return answer;
  };

  return {
    append: (c, values) => held.push({ c, values }),
    readUnlocked(c, key) {
      if (!mayReadUnlocked || begun) return undefined;
      mayReadUnlocked = false;
      return (async () => {
        const row = await unlocked!(c, key);
        // An absent row needs no guard: a locking read of it would lock nothing either.
        if (row) guard = { c, key, xmin: row.authmd_xmin as string };
        return row;
      })();
    },
    run,
    async commit() {
      if (changed) throw new RowChangedError();
      // Rows that fit one statement need no BEGIN (and no connection of their own: they go out with
      // other transactions' rows, and a guard goes with them); more than that are sent as several in
      // one transaction. A transaction that wrote nothing has nothing to check.
      if (!begun && held.length <= BATCHED_TRANSACTION_ROWS) {
        if (held.length === 0) return;
        const rows = held;
        held = [];
        return appendOnly({ rows, guard });
      }
      const commit = await run('COMMIT');
      // COMMIT of a transaction that failed answers ROLLBACK, not an error.
      if (commit.command !== 'COMMIT') throw new Error(`PostgreSQL answered ${commit.command} to COMMIT: the transaction was rolled back`);
    },
    async rollback() {
      held = [];
      // ROLLBACK goes behind whatever is still on its way, and its answer comes after theirs.
      if (begun) await base('ROLLBACK').catch(() => {});
    },
  };
}

/**
 * Appended rows per statement. Rows go as one array per column, so a statement's parameters do not
 * grow with its rows; this bounds the size of one statement (and of its answer to a failure) for a
 * bulk import, which appends tens of thousands.
 */
const ROWS_PER_STATEMENT = 1000;
/** A transaction that appends at most this many rows (and nothing else) joins the append batcher. */
const BATCHED_TRANSACTION_ROWS = 32;

/** Appended rows cut into statements (a bulk import appends tens of thousands). */
function statementsFor<T>(rows: readonly T[]): T[][] {
  const statements: T[][] = [];
  for (let at = 0; at < rows.length; at += ROWS_PER_STATEMENT) statements.push(rows.slice(at, at + ROWS_PER_STATEMENT));
  return statements;
}

/** A row appended in a transaction, waiting to be sent. */
interface HeldRow {
  c: Compiled;
  values: unknown[];
}

/** A row a rerunnable transaction read without a lock, and its version then (`xmin`). */
interface Guard {
  c: Compiled;
  key: unknown;
  xmin: string;
}

/** What a transaction that only appended hands to the append batcher: its rows, written only while its guard holds. */
interface AppendOnly {
  rows: readonly HeldRow[];
  guard?: Guard;
}

/** The row a rerunnable transaction read without a lock changed before the transaction wrote: it runs again. */
class RowChangedError extends Error {
  override readonly name = 'RowChangedError';
  constructor() {
    super('the row this transaction read changed before it wrote; it runs again');
  }
}

/** Rows inserted by one statement, outside the append batcher (a transaction's rows, sent ahead of its next statement). */
function insertRows(rows: readonly HeldRow[]): { text: string; values: unknown[] } {
  return appendStatement([{ rows }]);
}

/**
 * Values per batched statement of the append batcher: about a hundred registrations. It bounds how
 * long one statement holds its rows' locks and how much a failed batch sends again, one transaction at a time.
 */
const BATCH_VALUES = 8192;
/** Batched appends in flight at once: one fills while the other waits for its commit's WAL flush. */
const APPENDS_IN_FLIGHT = 2;

/**
 * Group commit for transactions that only append rows (a registration: the registration, its
 * reminder and its audit event). Their rows, arriving from concurrent requests, go out together as
 * one statement, which PostgreSQL commits, and flushes, once: on two cores the commit and its WAL
 * flush, not the rows, are most of what a registration costs the database (docs/decisions.md). Each
 * transaction stays atomic: when a batch fails on a row (a duplicate key), nothing of it was
 * written, and each of its transactions is sent again alone, so only the one holding the duplicate
 * fails, with its own error.
 */
function createAppendBatcher(run: Runner): (item: AppendOnly) => Promise<void> {
  /** One transaction's rows alone: its own duplicate error, or RowChangedError when its guard failed. */
  const alone = async (item: AppendOnly): Promise<void> => {
    const statement = appendStatement([item]);
    let answer: pg.QueryResult<Row>;
    try {
      answer = await run(statement.text, statement.values);
    } catch (error) {
      throw duplicateIn(item.rows, error);
    }
    if (item.guard && answer.rows.length === 0) throw new RowChangedError();
  };
  return createBatcher<AppendOnly, void>({
    inFlight: APPENDS_IN_FLIGHT,
    cost: (item) => item.rows.reduce((sum, row) => sum + row.values.length + 1, item.guard ? 3 : 0),
    budget: BATCH_VALUES,
    async send(batch) {
      if (batch.length === 1) return alone(batch[0]!.input).then(batch[0]!.resolve, batch[0]!.reject);
      const statement = appendStatement(batch.map((waiting) => waiting.input));
      let answer: pg.QueryResult<Row>;
      try {
        answer = await run(statement.text, statement.values);
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        await Promise.all(batch.map((waiting) => alone(waiting.input).then(waiting.resolve, waiting.reject)));
        return;
      }
      const held = new Set(answer.rows.map((row) => Number(row.i)));
      batch.forEach((waiting, i) => (waiting.input.guard && !held.has(i) ? waiting.reject(new RowChangedError()) : waiting.resolve()));
    },
  });
}

/**
 * The statement of a batch of append-only transactions: one INSERT per table, the tables as
 * data-modifying CTEs (PostgreSQL makes the statement atomic). Each table's rows go as one array per
 * column (`unnest`), so the statement's text depends on which tables it writes, not on how many rows:
 * a handful of texts, each prepared once per connection (`createStatementNames`), where one VALUES
 * tuple per row made a new text, parsed and planned again, for every batch size.
 *
 * With guards, each guarded row is locked `FOR SHARE` where it is still the version read (`xmin`),
 * in a CTE that names the transactions whose guard holds (`ok`); each row goes in only when its
 * transaction has no guard or is in `ok`; the statement answers `ok`. A row changed by a transaction
 * still open is waited for, then checked again in its new version (READ COMMITTED), so a revocation
 * either waits for this commit or makes the guard fail.
 */
function appendStatement(items: readonly AppendOnly[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const array = (value: unknown[], type: string) => `$${values.push(value)}::${type}[]`;
  const guards = new Map<Compiled, { transactions: number[]; keys: unknown[]; versions: string[] }>();
  const tables = new Map<Compiled, { columns: unknown[][]; transactions: (number | null)[] }>();
  items.forEach((item, i) => {
    if (item.guard) {
      const { c, key, xmin } = item.guard;
      const guard = guards.get(c) ?? guards.set(c, { transactions: [], keys: [], versions: [] }).get(c)!;
      guard.transactions.push(i);
      guard.keys.push(key);
      guard.versions.push(xmin);
    }
    for (const row of item.rows) {
      const table = tables.get(row.c) ?? tables.set(row.c, { columns: row.c.columns.map(() => []), transactions: [] }).get(row.c)!;
      row.values.forEach((value, k) => table.columns[k]!.push(value));
      table.transactions.push(item.guard ? i : null);
    }
  });
  const locks = [...guards].map(
    ([c, g], n) =>
      `g${n} AS MATERIALIZED (SELECT v.i FROM unnest(${array(g.transactions, 'int')}, ${array(g.keys, 'text')}, ${array(g.versions, 'xid')}) AS v (i, k, x) ` +
      `JOIN ${c.table} r ON r.${q(c.spec.key)} = v.k AND r.xmin = v.x FOR SHARE OF r)`,
  );
  const inserts = [...tables].map(([c, table]) => {
    const columns = table.columns.map((column, k) => array(column, columnType(c, k)));
    if (locks.length === 0) return `INSERT INTO ${c.table} (${c.selectList}) SELECT * FROM unnest(${columns.join(', ')})`;
    return (
      `INSERT INTO ${c.table} (${c.selectList}) SELECT ${c.selectList} FROM unnest(${columns.join(', ')}, ${array(table.transactions, 'int')}) ` +
      `AS v (${c.selectList}, authmd_tx) WHERE v.authmd_tx IS NULL OR v.authmd_tx IN (SELECT i FROM ok)`
    );
  });
  if (locks.length === 0) {
    const last = inserts.pop()!;
    return { text: inserts.length === 0 ? last : `WITH ${inserts.map((insert, n) => `w${n} AS (${insert})`).join(', ')} ${last}`, values };
  }
  const ok = `ok AS MATERIALIZED (${locks.map((_, n) => `SELECT i FROM g${n}`).join(' UNION ALL ')})`;
  return { text: `WITH ${[...locks, ok, ...inserts.map((insert, n) => `w${n} AS (${insert})`)].join(', ')} SELECT i FROM ok`, values };
}

/** A row by its key, read without a lock, with its version (`authmd_xmin`). */
type KeyReader = (c: Compiled, key: unknown) => Promise<Row | undefined>;

/** Keys per batched lookup statement. */
const KEYS_PER_READ = 256;
/** Batched lookups in flight at once. */
const READS_IN_FLIGHT = 2;

/**
 * Lookups by key without a lock, batched like appends: the keys concurrent requests ask for go out
 * as one statement per table (`= ANY`). Every statement costs this process a socket write and its
 * answer's parsing, and the database a round of its protocol; an exchange is one lookup and one
 * share of a batched insert, so batching the lookup too is what leaves it fewer than one statement
 * (docs/decisions.md). Each lookup still sees every commit that completed before it was asked for:
 * its statement starts later.
 */
function createKeyReader(run: Runner): KeyReader {
  const read = createBatcher<{ c: Compiled; key: string }, Row | undefined>({
    inFlight: READS_IN_FLIGHT,
    cost: () => 1,
    budget: KEYS_PER_READ,
    async send(batch) {
      const tables = new Map<Compiled, Waiting<{ c: Compiled; key: string }, Row | undefined>[]>();
      for (const waiting of batch) (tables.get(waiting.input.c) ?? tables.set(waiting.input.c, []).get(waiting.input.c)!).push(waiting);
      await Promise.all(
        [...tables].map(async ([c, waiting]) => {
          const keys = [...new Set(waiting.map((w) => w.input.key))];
          const { rows } = await run(`SELECT ${c.selectList}, xmin::text AS authmd_xmin FROM ${c.table} WHERE ${q(c.spec.key)} = ANY($1::text[])`, [keys]);
          const byKey = new Map(rows.map((row) => [row[c.spec.key] as string, row]));
          for (const w of waiting) w.resolve(byKey.get(w.input.key));
        }),
      );
    },
  });
  // A key is stored as text; null or undefined names no row.
  return (c, key) => (key === null || key === undefined ? Promise.resolve(undefined) : read({ c, key: String(key) }));
}

/** The SQL type of a row's k-th value, for a statement that reads rows from VALUES instead of inserting them directly. */
function columnType(c: Compiled, k: number): string {
  const column = c.columns[k]!;
  return column === c.spec.key ? 'text' : SQL_TYPE[c.spec.columns[column] as ColumnKind].toLowerCase();
}

/** A unique violation among appended rows, as the DuplicateKeyError of the table PostgreSQL names. */
function duplicateIn(rows: readonly HeldRow[], error: unknown): unknown {
  const table = (error as { table?: unknown }).table;
  const spec = rows.find((row) => row.c.spec.name === table)?.c.spec ?? rows[0]!.c.spec;
  return asDuplicateKey(spec, error);
}

/**
 * PostgreSQL text and JSONB cannot hold U+0000, which the contract allows (replay keys use it as a
 * separator; a hostile `sub` may carry it). Such strings are stored with U+0000 as U+FFFF '0' and
 * U+FFFF itself as U+FFFF '1': injective, so equality lookups stay exact, and strings holding
 * neither character (all of them in practice) are stored as they are.
 */
const ESCAPE = '\uFFFF';
const NEEDS_ESCAPE = /[\u0000\uFFFF]/;

function encodeText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\u0000\uFFFF]/g, (ch) => (ch === ESCAPE ? `${ESCAPE}1` : `${ESCAPE}0`)) : value;
}

function decodeText(value: string): string {
  return value.includes(ESCAPE) ? value.replace(/\uFFFF([01])/g, (_, digit: string) => (digit === '0' ? '\u0000' : ESCAPE)) : value;
}

/** Whether any string of a JSON value (keys included) holds the escape character; stops at the first. */
function holdsEscape(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(ESCAPE);
  if (Array.isArray(value)) return value.some(holdsEscape);
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([key, entry]) => key.includes(ESCAPE) || holdsEscape(entry));
  return false;
}

/** Applies `f` to every string of a JSON value, object keys included. */
function mapJsonStrings(value: unknown, f: (text: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((entry) => mapJsonStrings(entry, f));
  // fromEntries defines properties: a hostile "__proto__" key stays a key, never a prototype.
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, entry]) => [f(key), mapJsonStrings(entry, f)]));
  return value;
}

function encode(kind: ColumnKind, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (kind === 'json') {
    const text = JSON.stringify(value);
    return NEEDS_ESCAPE.test(text) || text.includes('\\u0000') ? JSON.stringify(mapJsonStrings(value, encodeText)) : text;
  }
  return typeof value === 'string' ? encodeText(value) : value;
}

/** A key or lookup value bound as a query parameter: text, encoded as stored. */
function encodeKey(value: unknown): unknown {
  return typeof value === 'string' ? encodeText(value) : value;
}

function encodeRow(c: Compiled, row: Row): unknown[] {
  if (typeof row[c.spec.key] !== 'string') throw new TypeError(`${c.spec.name}.${c.spec.key} must be a string`);
  return c.columns.map((col) => encode(c.spec.columns[col] as ColumnKind, row[col]));
}

/** BIGINT arrives as a string (pg keeps 64-bit precision); the contract's integers are JS numbers. */
function decode<R extends Row>(spec: TableSpec<R>, row: Row): R {
  const out: Row = {};
  for (const [col, kind] of Object.entries(spec.columns) as [string, ColumnKind][]) {
    const value = row[col] ?? null;
    if (value === null) out[col] = null;
    else if (kind === 'integer') out[col] = Number(value);
    else if (kind === 'text') out[col] = decodeText(value as string);
    else if (kind === 'json') out[col] = holdsEscape(value) ? mapJsonStrings(value, decodeText) : value;
    else out[col] = value;
  }
  return out as R;
}

function placeholders(c: Compiled, offset = 0): string {
  return c.columns.map((col, i) => `$${offset + i + 1}${c.spec.columns[col] === 'json' ? '::jsonb' : ''}`).join(', ');
}

function param(kind: ColumnKind, params: unknown[], value: unknown): string {
  params.push(encode(kind, value));
  return kind === 'json' ? `$${params.length}::jsonb` : `$${params.length}`;
}

function setClause(spec: Spec, patch: Row, params: unknown[]): string {
  const parts: string[] = [];
  for (const [column, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    if (column === spec.key) throw new Error(`${spec.name}.${column} is the key and cannot be updated`);
    parts.push(`${q(column)} = ${param(kind, params, value)}`);
  }
  // An empty patch still "changes" a matching row, so update() reports whether the row matched.
  return parts.length ? parts.join(', ') : `${q(spec.key)} = ${q(spec.key)}`;
}

function whereClause(spec: Spec, where: Where<any> | undefined, params: unknown[]): string {
  let sql = '';
  for (const [column, value] of Object.entries(where ?? {})) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    sql += value === null ? ` AND ${q(column)} IS NULL` : ` AND ${q(column)} = ${param(kind, params, value)}`;
  }
  return sql;
}
