/**
 * The Store contract: everything the service persists goes through these few operations.
 *
 * A store holds *tables*. A table is declared once (a `TableSpec`) with its primary key, its column
 * kinds, and which columns are indexed. Every read on a request path names the primary key or an
 * indexed column, so no backend ever has to scan: `findOne`/`findMany`/`updateWhere`/`count` refuse a
 * column that is not declared as indexed, and `page` an order that no `ordered` index declares.
 *
 * Atomicity comes from the primitives, never from read-then-write in the caller:
 * - `insertIfAbsent`: exactly one of several concurrent inserts of a key wins (replay caches).
 * - `update` with `where`: compare-and-set on one row (a state transition happens once).
 * - `consumeOne`: atomically remove a row and hand it to exactly one caller (single-use secrets).
 * - `incrementWithin`: a counter in a fixed window (attempt limits, rate limits).
 * - `transaction`: several writes that land together or not at all, isolated from other callers.
 *
 * Values: timestamps are integers (epoch milliseconds); booleans are booleans; `json` columns hold
 * any JSON value (arrays of scopes, small objects). `null` means "no value"; every non-key column may
 * be null. Rows come back as plain objects with every declared column present, and are copies: changing
 * one never changes the store.
 *
 * Rules every backend follows (the shared suite in test/store checks them):
 * - `undefined` in a `patch` or `where` means "not given"; in an inserted row it is stored as null.
 *   Unknown columns in a patch or condition throw; the key column cannot be patched.
 * - A write that would duplicate a unique value (`insert`, `update`, `updateWhere`) throws
 *   `DuplicateKeyError` and changes nothing; `updateWhere` is all-or-nothing.
 * - `update` reports whether the row matched `where`, even if the patch changed no value.
 * - Transactions are serializable: what a transaction reads stays as read until it commits, and
 *   concurrent writers to those rows wait. Nested `tx.transaction` runs inline, without a savepoint.
 *   Concurrent transactions may be committed together (group commit), but each one's writes stay
 *   its own: one that throws is rolled back alone, and none resolves before its writes are durable.
 * - Using the store itself (not the handle) from inside its own transaction cannot complete; the
 *   backend fails it after a lock timeout (default 10 s) with an error that says so, never a hang.
 * - Tables must be migrated before use; only migrated tables are purged.
 */

export type ColumnKind = 'text' | 'integer' | 'boolean' | 'json';

export type Value = string | number | boolean | null | JsonValue;
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A row type: every property is a column. */
export type Row = { [column: string]: unknown };

export interface TableSpec<R extends Row = Row> {
  /** SQL-safe name: lowercase letters, digits and underscores. */
  readonly name: string;
  /** The primary key column; its values are strings. */
  readonly key: keyof R & string;
  /** Every column, including the key, with its kind. */
  readonly columns: { readonly [C in keyof R & string]-?: ColumnKind };
  /** Columns with a unique index (null values do not collide). */
  readonly unique?: readonly (keyof R & string)[];
  /** Columns with a non-unique index. */
  readonly indexed?: readonly (keyof R & string)[];
  /** An integer column: rows whose value is below `now` are deleted by `purgeExpired`. */
  readonly expiresAt?: keyof R & string;
  /** Orders `page` can list rows in, each backed by its own index. */
  readonly ordered?: readonly OrderedIndex<R>[];
}

/**
 * An index on `(eq, by, key)` (`(by, key)` without `eq`): it hands `page` its rows in order, starting
 * anywhere, so a page costs the same on the first screen and a million rows down. An alias over the
 * column names rather than an interface over the row: specs of row types that differ only in their
 * values' types (a literal `kind` and a `string` one) stay assignable, as they are for `indexed`.
 */
export type OrderedIndex<R extends Row> = OrderedIndexColumns<keyof R & string>;

export interface OrderedIndexColumns<C extends string> {
  /** The integer (or text) column rows are ordered by, newest (largest) first; ties broken by the key, also descending. */
  readonly by: C;
  /** Optional equality column: the index serves `page` queries with `where` on it. */
  readonly eq?: C;
}

/** Declares a table; the identity function exists so that the row type is checked against the spec. */
export function table<R extends Row>(spec: TableSpec<R>): TableSpec<R> {
  return spec;
}

/** Equality conditions on columns; `null` matches a null (absent) value. */
export type Where<R extends Row> = { readonly [C in keyof R]?: R[C] | null };

export interface CounterState {
  /** The count: after this increment, for `incrementWithin`. */
  count: number;
  /** When the current window ends (epoch ms); the counter starts again from 1 after it. */
  resetAt: number;
}

/** Data operations; available on the store and, inside a transaction, on the transaction handle. */
export interface StoreOps {
  /**
   * The row with this primary key, or undefined. Inside a transaction the row stays as read until
   * the commit. With `shared`, other transactions may read it the same way meanwhile (only writers
   * wait): for a row this transaction reads but does not change, which many requests read at once.
   * A transaction must not write a row it read shared: two that did would wait for each other.
   */
  get<R extends Row>(table: TableSpec<R>, key: string, options?: { shared?: boolean }): Promise<R | undefined>;

  /** The row whose `column` (the key or a `unique` column) equals `value`, or undefined. */
  findOne<R extends Row>(table: TableSpec<R>, column: keyof R & string, value: string | number): Promise<R | undefined>;

  /** Rows whose indexed `column` equals `value`, at most `limit` (default 1000), in no particular order. */
  findMany<R extends Row>(table: TableSpec<R>, column: keyof R & string, value: string | number, limit?: number): Promise<R[]>;

  /** Inserts a row. Throws `DuplicateKeyError` when the key or a unique column value already exists. */
  insert<R extends Row>(table: TableSpec<R>, row: R): Promise<void>;

  /**
   * Inserts a row whose key and unique values are new by construction (random ids), without waiting
   * for the database: inside a transaction a backend may send it ahead, together with the statements
   * that follow and the commit, in one round trip. A duplicate still fails, but as the rejection of a
   * later operation of the transaction or of its commit, and the whole transaction rolls back; a
   * caller that wants to catch a duplicate and go on uses `insert`. Outside a transaction it is `insert`.
   */
  append<R extends Row>(table: TableSpec<R>, row: R): Promise<void>;

  /** Inserts a row unless its key already exists. Returns true when this call inserted it. */
  insertIfAbsent<R extends Row>(table: TableSpec<R>, row: R): Promise<boolean>;

  /**
   * Compare-and-set on one row: applies `patch` to the row with this key only if every column in
   * `where` currently equals the given value. Returns true when the row was changed.
   */
  update<R extends Row>(table: TableSpec<R>, key: string, patch: Partial<R>, where?: Where<R>): Promise<boolean>;

  /**
   * Applies `patch` to every row whose indexed `column` equals `value` and that matches `where`.
   * Returns the number of rows changed.
   */
  updateWhere<R extends Row>(
    table: TableSpec<R>,
    column: keyof R & string,
    value: string | number,
    patch: Partial<R>,
    where?: Where<R>,
  ): Promise<number>;

  /**
   * Atomically deletes the row with this key (if it matches `where`) and returns it. Of several
   * concurrent callers, exactly one receives the row; the others receive undefined.
   */
  consumeOne<R extends Row>(table: TableSpec<R>, key: string, where?: Where<R>): Promise<R | undefined>;

  /**
   * Atomically deletes and returns up to `limit` rows whose indexed integer `column` is below `now`,
   * oldest first: a queue of due work that several replicas can drain without doing anything twice.
   */
  takeDue<R extends Row>(table: TableSpec<R>, column: keyof R & string, now: number, limit: number): Promise<R[]>;

  /**
   * Up to `limit` rows whose indexed integer `column` is below `now`, oldest first, without changing
   * them. For work that must survive a crash while it is done (an outbox): read the due rows, then
   * lease each with a compare-and-set `update` of the column before working on it.
   */
  findDue<R extends Row>(table: TableSpec<R>, column: keyof R & string, now: number, limit: number): Promise<R[]>;

  /** Deletes the row with this key. Returns true when a row was deleted. */
  delete<R extends Row>(table: TableSpec<R>, key: string): Promise<boolean>;

  /**
   * One page of rows in the order of an `ordered` index: `orderBy` descending, then the key
   * descending. Rows whose `orderBy` is null are on no page. The next page starts `after` the last
   * row of this one; an empty page means there is none. One index range read however deep the page
   * (keyset pagination, never an offset). Refuses (`UnindexedLookupError`) an order, or an order with
   * `where`, that no `ordered` index of the table declares. Inside a transaction it sees the
   * transaction's own writes and, like the other reads, holds the rows it returns until the commit.
   */
  page<R extends Row>(table: TableSpec<R>, query: PageQuery<R>): Promise<R[]>;

  /**
   * How many rows match every equality in `where` (null matches null): what a bulk action will
   * touch. At least one column of `where` must be the key, a `unique` or `indexed` column or the `eq`
   * of an `ordered` index (else `UnindexedLookupError`); the rest filter the rows that one finds.
   * Inside a transaction it counts the transaction's own writes, but holds nothing: rows may come
   * and go before the commit.
   */
  count<R extends Row>(table: TableSpec<R>, where: Where<R>): Promise<number>;

  /**
   * Increments the counter `key` and returns its state. The first increment opens a window of
   * `windowMs` starting at `now`; increments inside it count up; the first increment at or after
   * `resetAt` opens a new window at 1. Counters are not rolled back by a failed transaction.
   */
  incrementWithin(key: string, windowMs: number, now: number): Promise<CounterState>;

  /**
   * Tiered limits: increments the counters in order, each as `incrementWithin`, and stops after the
   * first whose count passes its `limit` (the ones after it are not counted). Returns the states of
   * the counters it incremented, in order. A networked backend does it in one round trip.
   */
  incrementTiers(tiers: readonly CounterTier[], now: number): Promise<CounterState[]>;

  /**
   * The counter `key` as it stands at `now`, without counting: undefined when there is none or its
   * window has ended (the next increment would start again from 1).
   */
  peekCounter(key: string, now: number): Promise<CounterState | undefined>;

  /**
   * Deletes the counter `key`, so that its next increment starts from 1 (an operator lifting a rate
   * limit). Returns true when one was stored: a counter whose window has ended may still be, until
   * `purgeExpired`. Like increments, not undone by a failed transaction.
   */
  clearCounter(key: string): Promise<boolean>;
}

export interface PageQuery<R extends Row> {
  /** Must be the `by` of an `ordered` index of the table (with the same `eq` column as `where`, or none). */
  orderBy: keyof R & string;
  /** Equality on the ordered index's `eq` column. */
  where?: { column: keyof R & string; value: string | number };
  /** Rows strictly after this one in the order (orderBy desc, key desc): the last row of the previous page. */
  after?: { value: string | number; key: string };
  /** Only rows with from <= orderBy < to (either bound optional). */
  range?: { from?: number; to?: number };
  /** 1..1000. */
  limit: number;
}

export interface CounterTier {
  key: string;
  windowMs: number;
  limit: number;
}

export interface Store extends StoreOps {
  /** 'memory', 'sqlite', … for logs and diagnostics. */
  readonly kind: string;

  /**
   * Creates the tables and indexes that do not exist yet, and adds columns that a newer spec
   * declares. Idempotent; call once at start with every table the application uses.
   */
  migrate(tables: readonly TableSpec<any>[]): Promise<void>;

  /**
   * Runs `fn` with a handle whose writes land together when `fn` resolves and not at all when it
   * throws (the error is rethrown). Other callers never observe a partial transaction, and a
   * transaction never observes another one's uncommitted writes. Keep transactions short: no network
   * I/O and no waiting on anything but the handle. Calling `transaction` on the handle runs inline.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;

  /** Deletes rows past their `expiresAt` column and expired counters. Returns how many were deleted. */
  purgeExpired(now: number): Promise<number>;

  /** Releases connections and file handles. */
  close(): Promise<void>;

  /**
   * Optional readiness check of what the store depends on besides its tables (a Redis holding its
   * counters): resolves when it answers, rejects (StoreUnavailableError) when not. The service's
   * `/readyz` reads one row from the store and then calls this.
   */
  ping?(): Promise<void>;

  /**
   * Optional invalidation channel between the processes sharing this store (replicas). A store that
   * only one process can use (memory; SQLite, whose file the service opens from one process) leaves
   * both out: there is no other process whose caches could go stale, and the service clears its own
   * caches directly.
   *
   * `broadcast` sends `message` on `topic` to every subscriber of every store on the same database,
   * this one included, after whatever the caller committed before calling it. It resolves once the
   * message was sent and, while this store's own subscription is live, once it came back to this
   * store and every other subscribing store acknowledged it after running its listeners (or a short
   * bound passed), so that a caller acknowledging a revocation knows the other processes have
   * cleared their caches. It rejects when the message could not be sent.
   */
  broadcast?(topic: string, message: string): Promise<void>;

  /**
   * Calls `listener` with each message broadcast on `topic`, by any process (this one included).
   * `listener(undefined)` means messages may have been missed (the channel was lost and is back):
   * treat everything cached as stale. While `live` is false (not yet connected, or reconnecting),
   * messages are being missed, so callers should not trust their caches.
   */
  subscribe?(topic: string, listener: InvalidationListener): Subscription;
}

/** A message, or undefined for "messages may have been missed: everything cached is stale". */
export type InvalidationListener = (message: string | undefined) => void;

export interface Subscription {
  /** Whether messages are being received right now. */
  readonly live: boolean;
  /** Stops calling the listener. */
  close(): void;
}

export interface TransactionOptions {
  /**
   * `fn` may be run more than once, and only its last run commits: it acts on nothing but its handle
   * (no counters, which no rollback undoes, and nothing outside the store that must not happen
   * twice; a log line may). A backend may then read
   * the first row it reads `shared` without locking it, and check when the transaction writes that
   * the row is still the version it read, running `fn` again (the second time with the lock) when it
   * changed. What `fn` reads stays as read until the commit, as without the option; a transaction
   * reading one row and appending rows then needs no connection of its own on PostgreSQL, and its
   * rows share a commit with others'.
   */
  rerunnable?: boolean;
}

export interface StoreTx extends StoreOps {
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
}

/** An insert collided with an existing primary key or unique value. */
export class DuplicateKeyError extends Error {
  override readonly name = 'DuplicateKeyError';
  constructor(
    readonly table: string,
    readonly column: string,
  ) {
    super(`duplicate value for ${table}.${column}`);
  }
}

/** A lookup named a column that is neither the key nor indexed: it would need a scan. */
export class UnindexedLookupError extends Error {
  override readonly name = 'UnindexedLookupError';
  constructor(
    readonly table: string,
    readonly column: string,
  ) {
    super(`${table}.${column} is not indexed; declare it in the table spec before looking rows up by it`);
  }
}

/** Checks, for every backend alike, that a lookup column is indexed. */
export function assertIndexed(spec: TableSpec<any>, column: string, unique: boolean): void {
  if (column === spec.key) return;
  if (spec.unique?.includes(column)) return;
  if (!unique && spec.indexed?.includes(column)) return;
  throw new UnindexedLookupError(spec.name, column);
}

/**
 * The ordered index that serves `query`, for every backend alike: the one ordering by `orderBy` with
 * `where`'s column as its `eq`, or with no `eq` when there is no `where`.
 */
export function assertOrdered<R extends Row>(spec: TableSpec<R>, query: Pick<PageQuery<R>, 'orderBy' | 'where'>): OrderedIndex<R> {
  const eq = query.where?.column;
  const index = spec.ordered?.find((candidate) => candidate.by === query.orderBy && candidate.eq === eq);
  if (index) return index;
  const ordersBy = spec.ordered?.some((candidate) => candidate.by === query.orderBy);
  throw new UnindexedLookupError(spec.name, ordersBy && eq !== undefined ? eq : query.orderBy);
}

/** Checks, for every backend alike, that `count` finds its rows through an index: one column of `where` is indexed. */
export function assertCountable(spec: TableSpec<any>, where: Where<any>): void {
  const columns = Object.keys(where).filter((column) => where[column] !== undefined);
  const indexed = (column: string) => column === spec.key || spec.unique?.includes(column) || spec.indexed?.includes(column) || spec.ordered?.some((index) => index.eq === column);
  if (!columns.some(indexed)) throw new UnindexedLookupError(spec.name, columns.join(', ') || '(no column)');
}

/**
 * The backend cannot reach its database right now (refused, timed out, restarting). Operations fail
 * with this at once rather than hang; the HTTP layer answers 503 with Retry-After.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
