import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { startCheckpointer, type Checkpointer } from './checkpointer.ts';
import { openDatabase } from './open-database.ts';
import {
  assertCountable,
  assertIndexed,
  DuplicateKeyError,
  type ColumnKind,
  type CounterState,
  type OrderedIndex,
  type PageQuery,
  type Row,
  type Store,
  type StoreOps,
  type StoreTx,
  type TableSpec,
  type Where,
} from '../contract.ts';
import { attempt, checkLimit, DEFAULT_LIMIT, DEFAULT_LOCK_TIMEOUT_MS, kindOf, Mutex, orderedIndexName, orderedIndexPredicate, planPage, validateSpec, type PageBounds } from '../shared.ts';

type Spec = TableSpec<any>;
type Runner = <T>(f: () => T) => Promise<T>;
type Statement = Database.Statement<unknown[], Row>;

/** Per-spec SQL pieces and prepared statements, built once per spec object. */
interface Compiled {
  spec: Spec;
  table: string;
  columns: string[];
  selectList: string;
  booleans: string[];
  jsons: string[];
  statements: Map<string, Statement>;
}

const COUNTERS = 'authmd_counters';
/**
 * The purge deletes in batches that each hold the database for about PURGE_BATCH_MS, however large
 * the tables: requests wait while a batch runs, and a row's cost grows with the table (its index
 * entries sit on pages of their own): 500 rows took 45 ms at a million registrations, 5 ms at a
 * thousand. The size adapts from one batch to the next, within these bounds.
 */
const PURGE_BATCH_MS = 5;
const PURGE_BATCH = { first: 200, min: 16, max: 5000 };
/** How long the group commit's queue may keep gathering transactions while they keep coming (see `enqueue`). */
const GATHER_MS = 2;
const SQL_TYPE: Record<ColumnKind, string> = { text: 'TEXT', integer: 'INTEGER', boolean: 'INTEGER', json: 'TEXT' };

const q = (name: string): string => `"${name}"`;
/**
 * A LIMIT taken from a parameter. Not `LIMIT ?`: SQLite reads a bare parameter there as a constant
 * when it plans the statement, and then plans it again every time a new value is bound (about 10 µs,
 * as much as the lookup itself: measured on a registration's lookup by id). An expression is not read.
 */
const LIMIT = 'LIMIT (? + 0)';

export interface SqliteStoreOptions {
  /** The database file; created with its directory when missing. `:memory:` for a throwaway store. */
  path: string;
  /** NORMAL (default) survives a killed process; FULL also survives power loss, at an fsync per commit. */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long an operation waits for a running transaction before failing (default 10 s). */
  lockTimeoutMs?: number;
  /** How often a worker thread checkpoints the WAL (default 250 ms); 0 leaves it to SQLite, on commit. */
  checkpointIntervalMs?: number;
  /**
   * Past this size (default 16 MiB) writes are held for a moment while the worker resets the WAL to
   * its start; a reset WAL file is truncated back to this size.
   */
  walRestartBytes?: number;
  /** Past this size (default 48 MiB) writes wait until the WAL could be reset. */
  walMaxBytes?: number;
  /**
   * SQLite's page cache, in MiB (default 64; SQLite's own is 2). The B-tree pages every lookup walks
   * through stay in memory as the tables grow: at a million registrations their inner pages alone
   * are about 20 MiB, and each page missed is a system call.
   */
  cacheMiB?: number;
}

const MiB = 1024 * 1024;
const DEFAULT_WAL_RESTART_BYTES = 16 * MiB;
const DEFAULT_WAL_MAX_BYTES = 48 * MiB;

export function createSqliteStore(options: SqliteStoreOptions): Store {
  const { path } = options;
  const cacheMiB = options.cacheMiB ?? 64;
  if (!(cacheMiB > 0 && cacheMiB <= 65_536)) throw new RangeError(`cacheMiB must be above 0 and at most 65536 (got ${cacheMiB})`);
  const db = openDatabase(path);
  // In WAL mode, NORMAL loses no committed transaction when the process dies (even SIGKILL): the WAL
  // is written before COMMIT returns, only its fsync is deferred. FULL also fsyncs at every commit,
  // so committed transactions survive a power loss or OS crash too.
  db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
  // Every queued transaction runs in a SAVEPOINT (group commit, below), and SQLite copies each page a
  // savepoint first changes into its sub-journal, which spills to a temporary file past 64 KiB: under
  // load that was seven times the WAL's own writes (95 KB and 44 write calls per anonymous
  // registration). In memory, the copies cost no system call, and each RELEASE empties the journal
  // again: it holds at most the pages of one transaction.
  db.pragma('temp_store = MEMORY');
  db.pragma(`cache_size = ${-Math.round(cacheMiB * 1024)}`); // negative: in KiB
  const walRestartBytes = byteSize('walRestartBytes', options.walRestartBytes ?? DEFAULT_WAL_RESTART_BYTES);
  const walMaxBytes = byteSize('walMaxBytes', options.walMaxBytes ?? Math.max(DEFAULT_WAL_MAX_BYTES, walRestartBytes));
  if (walMaxBytes < walRestartBytes) throw new RangeError('walMaxBytes must not be below walRestartBytes');
  db.pragma(`journal_size_limit = ${walRestartBytes}`); // a WAL started over is truncated back to this
  const onDisk = path !== ':memory:' && path !== '';
  /** What the checkpoint worker last found it had not copied yet (see purgeExpired). */
  let walBehindBytes = 0;
  const lock = new Mutex(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  /** True while the checkpointer resets the WAL: the lock is held for that, not for a transaction. */
  let walHold = false;
  let checkpointer: Checkpointer | undefined;
  if (onDisk && options.checkpointIntervalMs !== 0) {
    db.pragma('wal_autocheckpoint = 0');
    checkpointer = startCheckpointer(resolve(path), {
      intervalMs: options.checkpointIntervalMs ?? 250,
      restartBytes: walRestartBytes,
      maxBytes: walMaxBytes,
      // Writes take the lock or run when it is free, so holding it holds them; reads go on meanwhile.
      holdWrites: async () => {
        await lock.acquire();
        walHold = true;
        return () => {
          walHold = false;
          lock.release();
        };
      },
      onFailure: () => {
        db.pragma('wal_autocheckpoint = 1000'); // the worker died: let SQLite checkpoint on commit again
        walBehindBytes = 0;
      },
      onBehind: (bytes) => {
        walBehindBytes = bytes;
      },
    });
  }
  db.exec(`CREATE TABLE IF NOT EXISTS ${COUNTERS} (key TEXT PRIMARY KEY NOT NULL, count INTEGER NOT NULL, reset_at INTEGER NOT NULL)`);
  db.exec(`CREATE INDEX IF NOT EXISTS ${COUNTERS}_reset_at ON ${COUNTERS} (reset_at)`);

  const increment = db.prepare<[{ key: string; now: number; resetAt: number }], { count: number; reset_at: number }>(
    `INSERT INTO ${COUNTERS} (key, count, reset_at) VALUES (@key, 1, @resetAt)
     ON CONFLICT(key) DO UPDATE SET
       count = CASE WHEN reset_at <= @now THEN 1 ELSE count + 1 END,
       reset_at = CASE WHEN reset_at <= @now THEN @resetAt ELSE reset_at END
     RETURNING count, reset_at`,
  );
  const restoreCounter = db.prepare<[string, number, number]>(
    `INSERT INTO ${COUNTERS} (key, count, reset_at) VALUES (?, ?, ?)
     ON CONFLICT(key) DO UPDATE SET count = excluded.count, reset_at = excluded.reset_at`,
  );
  const purgeCounters = db.prepare<[number]>(`DELETE FROM ${COUNTERS} WHERE reset_at <= ?`);
  const selectLiveCounter = db.prepare<[string, number], { count: number; reset_at: number }>(`SELECT count, reset_at FROM ${COUNTERS} WHERE key = ? AND reset_at > ?`);
  const deleteCounter = db.prepare<[string]>(`DELETE FROM ${COUNTERS} WHERE key = ?`);

  const compiled = new WeakMap<Spec, Compiled>();
  const migrated = new Map<string, Spec>();
  let closed = false;
  /** Rows per purge batch, carried from one purge to the next (see PURGE_BATCH_MS). */
  let purgeBatch = PURGE_BATCH.first;

  function compile(spec: Spec): Compiled {
    let c = compiled.get(spec);
    if (!c) {
      validateSpec(spec, [COUNTERS]);
      const columns = Object.keys(spec.columns);
      c = {
        spec,
        table: q(spec.name),
        columns,
        selectList: columns.map(q).join(', '),
        booleans: columns.filter((col) => spec.columns[col] === 'boolean'),
        jsons: columns.filter((col) => spec.columns[col] === 'json'),
        statements: new Map(),
      };
      compiled.set(spec, c);
    }
    return c;
  }

  function statement(c: Compiled, cacheKey: string, sql: () => string): Statement {
    let s = c.statements.get(cacheKey);
    if (!s) {
      s = db.prepare<unknown[], Row>(sql());
      c.statements.set(cacheKey, s);
    }
    return s;
  }

  /**
   * Migrations, purges and close run at once unless a transaction holds the lock; then they queue
   * behind it. (Store-level writes join the group commit instead: `writeOnStore`.)
   */
  const runOnStore: Runner = (f) => {
    if (!lock.locked) return attempt(f);
    return lock.run(f);
  };
  /** Reads need not wait while writes are held for a WAL reset (no transaction is open then). */
  const readOnStore: Runner = (f) => {
    if (!lock.locked || walHold) return attempt(f);
    return lock.run(f);
  };

  /**
   * `read` runs the operations that only read; `run` the others. `onCounter` hears every counter
   * write (undefined: cleared), so that a rolled-back transaction can put the counters back.
   */
  function makeOps(run: Runner, onCounter?: (key: string, state: CounterState | undefined) => void, read: Runner = run): StoreOps {
    const selectBy = (c: Compiled, column: string): Statement =>
      statement(c, `select:${column}`, () => `SELECT ${c.selectList} FROM ${c.table} WHERE ${q(column)} = ? ${LIMIT}`);

    const change = (t: Spec, column: string, value: unknown, patch: Row, where: Where<any> | undefined): number => {
      const c = compile(t);
      const set = setClause(t, patch);
      const cond = whereClause(t, where);
      const s = statement(c, `update:${column}:${set.cacheKey}:${cond.cacheKey}`, () => `UPDATE ${c.table} SET ${set.sql} WHERE ${q(column)} = ?${cond.sql}`);
      return withDuplicateKeys(t, () => s.run(...set.params, value, ...cond.params).changes);
    };

    const incrementNow = (key: string, windowMs: number, now: number): CounterState => {
      const row = increment.get({ key, now, resetAt: now + windowMs })!;
      const state = { count: row.count, resetAt: row.reset_at };
      onCounter?.(key, state);
      return state;
    };

    const ops: StoreOps = {
      get: (t, key) => read(() => {
        const c = compile(t);
        return decode(c, selectBy(c, t.key).get(key, 1));
      }),

      findOne: (t, column, value) => read(() => {
        assertIndexed(t, column, true);
        const c = compile(t);
        return decode(c, selectBy(c, column).get(value, 1));
      }),

      findMany: (t, column, value, limit = DEFAULT_LIMIT) => read(() => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const c = compile(t);
        return selectBy(c, column).all(value, limit).map((row) => decode(c, row)!);
      }),

      insert: (t, row) => run(() => {
        const c = compile(t);
        const s = statement(c, 'insert', () => `INSERT INTO ${c.table} (${c.selectList}) VALUES (${placeholders(c)})`);
        withDuplicateKeys(t, () => s.run(...encodeRow(c, row)));
      }),

      // Nothing to send ahead: every write here completes before it returns.
      append: (t, row) => ops.insert(t, row),

      insertIfAbsent: (t, row) => run(() => {
        const c = compile(t);
        const s = statement(
          c,
          'insertIfAbsent',
          () => `INSERT INTO ${c.table} (${c.selectList}) VALUES (${placeholders(c)}) ON CONFLICT(${q(t.key)}) DO NOTHING`,
        );
        return withDuplicateKeys(t, () => s.run(...encodeRow(c, row)).changes > 0);
      }),

      update: (t, key, patch, where) => run(() => change(t, t.key, key, patch, where) > 0),

      updateWhere: (t, column, value, patch, where) => run(() => {
        assertIndexed(t, column, false);
        return change(t, column, value, patch, where);
      }),

      consumeOne: (t, key, where) => run(() => {
        const c = compile(t);
        const cond = whereClause(t, where);
        const s = statement(c, `consume:${cond.cacheKey}`, () => `DELETE FROM ${c.table} WHERE ${q(t.key)} = ?${cond.sql} RETURNING ${c.selectList}`);
        return decode(c, s.get(key, ...cond.params));
      }),

      takeDue: (t, column, now, limit) => run(() => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const c = compile(t);
        const s = statement(
          c,
          `takeDue:${column}`,
          () =>
            `DELETE FROM ${c.table} WHERE rowid IN (SELECT rowid FROM ${c.table} WHERE ${q(column)} < ? ORDER BY ${q(column)} ${LIMIT}) RETURNING ${c.selectList}`,
        );
        // RETURNING gives no order guarantee; sort before decoding.
        const rows = s.all(now, limit).sort((a, b) => (a[column] as number) - (b[column] as number));
        return rows.map((row) => decode(c, row)!);
      }),

      findDue: (t, column, now, limit) => read(() => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const c = compile(t);
        const s = statement(c, `findDue:${column}`, () => `SELECT ${c.selectList} FROM ${c.table} WHERE ${q(column)} < ? ORDER BY ${q(column)} ${LIMIT}`);
        return s.all(now, limit).map((row) => decode(c, row)!);
      }),

      delete: (t, key) => run(() => {
        const c = compile(t);
        return statement(c, 'delete', () => `DELETE FROM ${c.table} WHERE ${q(t.key)} = ?`).run(key).changes > 0;
      }),

      page: (t, query) => read(() => {
        const { index, bounds } = planPage(t, query);
        const c = compile(t);
        const s = statement(c, `page:${orderedIndexName(t, index)}:${bounds.below ? '<' : ''}:${bounds.from === undefined ? '' : '>='}`, () => pageSql(c, index, bounds));
        return s.all(...pageParams(c, index, query, bounds)).map((row) => decode(c, row)!);
      }),

      count: (t, where) => read(() => {
        assertCountable(t, where);
        const c = compile(t);
        const cond = whereClause(t, where);
        const s = statement(c, `count:${cond.cacheKey}`, () => `SELECT count(*) AS n FROM ${c.table} WHERE ${cond.sql.slice(' AND '.length)}`);
        return (s.get(...cond.params) as { n: number }).n;
      }),

      incrementWithin: (key, windowMs, now) => run(() => incrementNow(key, windowMs, now)),

      // All the tiers in one write: `run` is a queued transaction's savepoint, or joins one (writeOnStore).
      incrementTiers: (tiers, now) =>
        run(() => {
          const states: CounterState[] = [];
          for (const tier of tiers) {
            const state = incrementNow(tier.key, tier.windowMs, now);
            states.push(state);
            if (state.count > tier.limit) break;
          }
          return states;
        }),

      peekCounter: (key, now) => read(() => {
        const row = selectLiveCounter.get(key, now);
        return row && { count: row.count, resetAt: row.reset_at };
      }),

      clearCounter: (key) => run(() => {
        const cleared = deleteCounter.run(key).changes > 0;
        onCounter?.(key, undefined);
        return cleared;
      }),
    };
    return ops;
  }

  /**
   * One index range, read downwards: `eq = ?` pins the group, `(by, key) < (?, ?)` is where the page
   * starts and `by >= ?` (or `by IS NOT NULL`) where it stops. SQLite compares the row value within
   * the index, so a deep page costs what the first one does.
   */
  function pageSql(c: Compiled, index: OrderedIndex<any>, bounds: PageBounds): string {
    const [by, key] = [q(index.by), q(c.spec.key)];
    const conditions = [
      ...(index.eq === undefined ? [] : [`${q(index.eq)} = ?`]),
      bounds.from === undefined ? `${by} IS NOT NULL` : `${by} >= ?`,
      ...(bounds.below ? [`(${by}, ${key}) < (?, ?)`] : []),
    ];
    return `SELECT ${c.selectList} FROM ${c.table} WHERE ${conditions.join(' AND ')} ORDER BY ${by} DESC, ${key} DESC ${LIMIT}`;
  }

  /** The values of `pageSql`'s placeholders, in its order. */
  function pageParams(c: Compiled, index: OrderedIndex<any>, query: PageQuery<any>, bounds: PageBounds): unknown[] {
    const params: unknown[] = [];
    if (index.eq !== undefined) params.push(encode(c.spec.columns[index.eq] as ColumnKind, query.where!.value));
    if (bounds.from !== undefined) params.push(bounds.from);
    if (bounds.below) params.push(bounds.below.value, bounds.below.key);
    return [...params, query.limit];
  }

  function migrateOne(spec: Spec): void {
    const c = compile(spec);
    const definition = (col: string) => `${q(col)} ${col === spec.key ? 'TEXT PRIMARY KEY NOT NULL' : SQL_TYPE[spec.columns[col] as ColumnKind]}`;
    db.exec(`CREATE TABLE IF NOT EXISTS ${c.table} (${c.columns.map(definition).join(', ')})`);
    const existing = new Set(db.prepare<[], { name: string }>(`PRAGMA table_info(${c.table})`).all().map((col) => col.name));
    for (const col of c.columns) {
      if (!existing.has(col)) db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${definition(col)}`);
    }
    for (const col of spec.unique ?? []) db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS ${q(`${spec.name}_${col}_unique`)} ON ${c.table} (${q(col)})`);
    for (const col of [...(spec.indexed ?? []), ...(spec.expiresAt ? [spec.expiresAt] : [])]) {
      db.exec(`CREATE INDEX IF NOT EXISTS ${q(`${spec.name}_${col}_idx`)} ON ${c.table} (${q(col)})`);
    }
    for (const index of spec.ordered ?? []) {
      const columns = [...(index.eq === undefined ? [] : [index.eq]), index.by, spec.key].map(q).join(', ');
      db.exec(`CREATE INDEX IF NOT EXISTS ${q(orderedIndexName(spec, index))} ON ${c.table} (${columns})${orderedIndexPredicate(index, q)}`);
    }
    migrated.set(spec.name, spec);
  }

  /**
   * Group commit. Transactions requested while the queue gathers run one after another inside a
   * single BEGIN … COMMIT, each in its own SAVEPOINT: one that throws is rolled back alone, and none
   * is reported done before the shared COMMIT has landed. Under load this writes each WAL page once
   * per batch instead of once per transaction; alone, a transaction waits one turn.
   *
   * The queue gathers for one turn of the event loop, and for another each time the last one added
   * to it, up to GATHER_MS after its first transaction. A COMMIT costs about the same for one
   * transaction as for thirty (a page of every B-tree they touched, each written as two system
   * calls), and the requests of many connections arrive spread over several turns: one turn gathered
   * about 11 of 32 concurrent registrations (docs/decisions.md).
   */
  interface Queued {
    fn: (tx: StoreTx) => Promise<unknown>;
    resolve: (value: any) => void;
    reject: (error: unknown) => void;
  }
  let queued: Queued[] = [];
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const savepoint = db.prepare('SAVEPOINT authmd_tx');
  const rollbackTo = db.prepare('ROLLBACK TO authmd_tx');
  const release = db.prepare('RELEASE authmd_tx');

  async function commitQueued(): Promise<void> {
    const batch = queued;
    queued = [];
    try {
      await lock.acquire();
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    const outcomes: (() => void)[] = [];
    try {
      begin.run();
      for (const item of batch) outcomes.push(await runInSavepoint(item));
      commit.run();
      for (const settle of outcomes) settle();
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      for (const item of batch) item.reject(error);
    } finally {
      lock.release();
    }
  }

  /** Runs one queued transaction; returns how to settle it once the batch has committed. */
  async function runInSavepoint(item: Queued): Promise<() => void> {
    let open = true;
    // Counters must survive a rollback: remember their last state (undefined: cleared) and write it back afterwards.
    const counters = new Map<string, CounterState | undefined>();
    const runInTx: Runner = (f) => (open ? attempt(f) : Promise.reject(new Error('the transaction has ended')));
    const tx: StoreTx = {
      ...makeOps(runInTx, (key, state) => counters.set(key, state)),
      transaction: (inner) => (open ? inner(tx) : Promise.reject(new Error('the transaction has ended'))),
    };
    savepoint.run();
    try {
      const value = await item.fn(tx);
      release.run();
      return () => item.resolve(value);
    } catch (error) {
      rollbackTo.run();
      release.run();
      for (const [key, state] of counters) {
        if (state) restoreCounter.run(key, state.count, state.resetAt);
        else deleteCounter.run(key);
      }
      return () => item.reject(error);
    } finally {
      open = false;
    }
  }

  /** When the queue's first transaction came, and how long the queue was at the last turn. */
  let gatheringSince = 0;
  let gathered = 0;
  function enqueue<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      queued.push({ fn, resolve, reject });
      if (queued.length === 1) {
        gatheringSince = performance.now();
        gathered = 1;
        setImmediate(gather);
      }
    });
  }

  function gather(): void {
    if (queued.length > gathered && performance.now() - gatheringSince < GATHER_MS) {
      gathered = queued.length;
      setImmediate(gather);
      return;
    }
    void commitQueued();
  }

  /** A write outside any transaction joins the next group commit, as a transaction of its own. */
  const writeOnStore: Runner = (f) => enqueue(async () => f());

  return {
    kind: 'sqlite',
    ...makeOps(writeOnStore, undefined, readOnStore),

    migrate: (specs) => runOnStore(() => db.transaction(() => specs.forEach(migrateOne))()),

    transaction: enqueue,

    async purgeExpired(now) {
      let deleted = 0;
      /**
       * Requests go first: after each batch the purge waits as long as the batch took, and while the
       * checkpoint worker has more than walRestartBytes of WAL left to copy (up to a second). Purged
       * back to back, 100,000 rows at a million registrations wrote the WAL faster than the worker
       * copied it; past walMaxBytes writes are held for the copy, and requests waited 200 ms.
       */
      const afterPurgeBatch = async (batchMs: number) => {
        await sleep(batchMs);
        for (const deadline = Date.now() + 1000; !closed && walBehindBytes > walRestartBytes && Date.now() < deadline; ) await sleep(10);
      };
      for (const spec of migrated.values()) {
        if (!spec.expiresAt) continue;
        const c = compile(spec);
        const exp = q(spec.expiresAt);
        const s = statement(c, 'purge', () => `DELETE FROM ${c.table} WHERE rowid IN (SELECT rowid FROM ${c.table} WHERE ${exp} IS NOT NULL AND ${exp} < ? ${LIMIT})`);
        for (;;) {
          const limit = purgeBatch;
          const { n, ms } = await runOnStore(() => {
            const started = performance.now();
            return { n: s.run(now, limit).changes, ms: performance.now() - started };
          });
          deleted += n;
          if (n < limit) break;
          // Halfway (geometrically) to the size that would have taken PURGE_BATCH_MS: one slow batch is no reason to crawl.
          const ideal = (limit * PURGE_BATCH_MS) / Math.max(ms, 0.1);
          purgeBatch = Math.round(Math.min(PURGE_BATCH.max, Math.max(PURGE_BATCH.min, Math.sqrt(limit * ideal))));
          await afterPurgeBatch(ms);
        }
      }
      return deleted + (await runOnStore(() => purgeCounters.run(now).changes));
    },

    close: async () => {
      if (closed) return;
      closed = true;
      await checkpointer?.stop();
      await runOnStore(() => db.close());
    },
  };
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

function byteSize(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 64 * 1024) throw new RangeError(`${name} must be a whole number of bytes, at least 64 KiB`);
  return value;
}

function encode(kind: ColumnKind, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (kind === 'boolean') return value ? 1 : 0;
  if (kind === 'json') return JSON.stringify(value);
  return value;
}

function encodeRow(c: Compiled, row: Row): unknown[] {
  if (typeof row[c.spec.key] !== 'string') throw new TypeError(`${c.spec.name}.${c.spec.key} must be a string`);
  return c.columns.map((col) => encode(c.spec.columns[col] as ColumnKind, row[col]));
}

/** Rows from better-sqlite3 are fresh objects, so they are decoded in place. */
function decode<R extends Row>(c: Compiled, row: Row | undefined): R | undefined {
  if (!row) return undefined;
  for (const col of c.booleans) if (row[col] !== null) row[col] = row[col] === 1;
  for (const col of c.jsons) if (row[col] !== null) row[col] = JSON.parse(row[col] as string);
  return row as R;
}

function placeholders(c: Compiled): string {
  return c.columns.map(() => '?').join(', ');
}

function setClause(spec: Spec, patch: Row): { sql: string; cacheKey: string; params: unknown[] } {
  const columns: string[] = [];
  const params: unknown[] = [];
  for (const [column, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    if (column === spec.key) throw new Error(`${spec.name}.${column} is the key and cannot be updated`);
    columns.push(column);
    params.push(encode(kind, value));
  }
  // An empty patch still "changes" a matching row, so update() reports whether the row matched.
  const sql = columns.length ? columns.map((col) => `${q(col)} = ?`).join(', ') : `${q(spec.key)} = ${q(spec.key)}`;
  return { sql, cacheKey: columns.join(','), params };
}

function whereClause(spec: Spec, where: Where<any> | undefined): { sql: string; cacheKey: string; params: unknown[] } {
  let sql = '';
  let cacheKey = '';
  const params: unknown[] = [];
  for (const [column, value] of Object.entries(where ?? {})) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    if (value === null) {
      sql += ` AND ${q(column)} IS NULL`;
      cacheKey += `${column}~,`;
    } else {
      sql += ` AND ${q(column)} = ?`;
      cacheKey += `${column}=,`;
      params.push(encode(kind, value));
    }
  }
  return { sql, cacheKey, params };
}

/** Maps SQLite's key and unique violations to DuplicateKeyError, naming the column from the message. */
function withDuplicateKeys<T>(spec: Spec, f: () => T): T {
  try {
    return f();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
      const column = /constraint failed: [a-z0-9_]+\.([a-z0-9_]+)/.exec((error as Error).message)?.[1];
      throw new DuplicateKeyError(spec.name, column ?? spec.key);
    }
    throw error;
  }
}
