import { assertOrdered, type ColumnKind, type CounterState, type CounterTier, type OrderedIndex, type PageQuery, type StoreOps, type TableSpec } from './contract.ts';

/** Pieces every backend shares: the transaction lock and the checks on table specs. */

export const DEFAULT_LIMIT = 1000;
export const MAX_PAGE_LIMIT = 1000;
const NAME = /^[a-z][a-z0-9_]*$/;
/** PostgreSQL cuts longer identifiers short, and two ordered indexes cut to one name would leave one of them uncreated. */
const MAX_INDEX_NAME = 63;

/**
 * A FIFO async lock; release hands it straight to the next waiter. A waiter gives up after
 * `timeoutMs`: the only way to wait that long is a transaction that awaits the store itself instead
 * of its handle (a deadlock) or one that hangs, and an error says so where a hang would not.
 */
export class Mutex {
  locked = false;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly timeoutMs: number) {}

  acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(lockTimeout(this.timeoutMs));
      }, this.timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.locked = false;
  }

  async run<T>(f: () => T): Promise<T> {
    await this.acquire();
    try {
      return f();
    } finally {
      this.release();
    }
  }
}

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

function lockTimeout(ms: number): Error {
  return new Error(
    `waited ${ms} ms for the store's transaction lock: a transaction is stuck, or code inside a transaction used the store instead of the transaction handle`,
  );
}

/** Runs `f` now and turns a throw into a rejected promise. */
export function attempt<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Names go into SQL, so they are restricted to a safe alphabet; indexed columns must be declared. */
export function validateSpec(spec: TableSpec<any>, reserved: readonly string[] = []): void {
  const names = [spec.name, ...Object.keys(spec.columns)];
  const bad = names.find((name) => !NAME.test(name));
  if (bad !== undefined) throw new Error(`invalid table or column name: ${JSON.stringify(bad)}`);
  if (reserved.includes(spec.name)) throw new Error(`${spec.name} is reserved`);
  for (const column of [spec.key, ...(spec.unique ?? []), ...(spec.indexed ?? []), ...(spec.expiresAt ? [spec.expiresAt] : [])]) {
    if (!Object.hasOwn(spec.columns, column)) throw new Error(`${spec.name}.${column} is not a declared column`);
  }
  for (const index of spec.ordered ?? []) validateOrdered(spec, index);
}

/** An ordered index orders by, and compares for equality on, integer or text columns only. */
function validateOrdered(spec: TableSpec<any>, index: OrderedIndex<any>): void {
  for (const column of index.eq === undefined ? [index.by] : [index.eq, index.by]) {
    if (!Object.hasOwn(spec.columns, column)) throw new Error(`${spec.name}.${column} is not a declared column`);
    const kind = spec.columns[column];
    if (kind !== 'integer' && kind !== 'text') throw new Error(`${spec.name}.${column} is ${kind}: an ordered index takes integer or text columns`);
  }
  const name = orderedIndexName(spec, index);
  if (name.length > MAX_INDEX_NAME) throw new Error(`the ordered index name ${name} is longer than ${MAX_INDEX_NAME} characters: shorten the table or column names`);
}

/**
 * The WHERE of an ordered index with an equality column: only rows that have a value there. A page
 * by `eq = ?` implies it (SQLite and PostgreSQL both use the index for it), and a row without one
 * (an anonymous registration has no user, provider or client id) costs that index nothing to write.
 */
export function orderedIndexPredicate(index: OrderedIndex<any>, quote: (name: string) => string): string {
  return index.eq === undefined ? '' : ` WHERE ${quote(index.eq)} IS NOT NULL`;
}

/** The name of an ordered index in the database: `<table>_<eq>_<by>_ord`, or `<table>_<by>_ord`. */
export function orderedIndexName(spec: TableSpec<any>, index: OrderedIndex<any>): string {
  return `${spec.name}_${index.eq === undefined ? '' : `${index.eq}_`}${index.by}_ord`;
}

/**
 * Where a page starts and stops, with `after` and `range.to` folded into one exclusive upper bound:
 * `by < to` is `(by, key) < (to, '')`, since no key is below ''. One bound is one index seek, however
 * the caller combined them.
 */
export interface PageBounds {
  /** Rows strictly below this (value, key) pair in the order. */
  below?: { value: string | number; key: string };
  /** Rows whose value is at least this. */
  from?: number;
}

/** Checks a page query (its index, limit and the types of its bounds) and returns the index and bounds it reads. */
export function planPage(spec: TableSpec<any>, query: PageQuery<any>): { index: OrderedIndex<any>; bounds: PageBounds } {
  const index = assertOrdered(spec, query);
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > MAX_PAGE_LIMIT) {
    throw new RangeError(`invalid page limit: ${query.limit} (1 to ${MAX_PAGE_LIMIT})`);
  }
  const kind = spec.columns[index.by] as 'integer' | 'text';
  const { after, range } = query;
  if (after && (typeof after.key !== 'string' || typeof after.value !== (kind === 'integer' ? 'number' : 'string'))) {
    throw new TypeError(`page after ${spec.name}.${index.by}: a ${kind === 'integer' ? 'number' : 'string'} value and a string key`);
  }
  if (range && kind !== 'integer') throw new TypeError(`page range on ${spec.name}.${index.by}: a range needs an integer column`);
  for (const bound of [range?.from, range?.to]) {
    if (bound !== undefined && !Number.isFinite(bound)) throw new RangeError(`invalid page range bound: ${bound}`);
  }
  return { index, bounds: { below: upperBound(after, range?.to), from: range?.from } };
}

function upperBound(after: PageQuery<any>['after'], to: number | undefined): PageBounds['below'] {
  if (to === undefined) return after;
  if (after && (after.value as number) < to) return after;
  return { value: to, key: '' };
}

export function kindOf(spec: TableSpec<any>, column: string): ColumnKind {
  const kind = Object.hasOwn(spec.columns, column) ? spec.columns[column] : undefined;
  if (!kind) throw new Error(`${spec.name} has no column ${column}`);
  return kind;
}

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`invalid limit: ${limit}`);
}

/** `incrementTiers` as one `incrementWithin` after another, for backends where each is cheap (or the only way). */
export async function incrementTiersInTurn(ops: Pick<StoreOps, 'incrementWithin'>, tiers: readonly CounterTier[], now: number): Promise<CounterState[]> {
  const states: CounterState[] = [];
  for (const tier of tiers) {
    const state = await ops.incrementWithin(tier.key, tier.windowMs, now);
    states.push(state);
    if (state.count > tier.limit) break;
  }
  return states;
}
