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
import {
  attempt,
  checkLimit,
  DEFAULT_LIMIT,
  DEFAULT_LOCK_TIMEOUT_MS,
  incrementTiersInTurn,
  kindOf,
  Mutex,
  orderedIndexName,
  planPage,
  validateSpec,
  type PageBounds,
} from '../shared.ts';

type Spec = TableSpec<any>;
type Runner = <T>(f: () => T) => Promise<T>;

interface TableState {
  spec: Spec;
  rows: Map<string, Row>;
  /** column → value → key */
  unique: Map<string, Map<unknown, string>>;
  /** column → value → keys; ordered indexes' `eq` columns too, for `count` */
  indexed: Map<string, Map<unknown, Set<string>>>;
  /** ordered index name → its entries */
  ordered: Map<string, OrderedState>;
}

/** A place in an ordered index: its order value and the row's key. */
interface OrderedEntry {
  value: string | number;
  key: string;
}

interface OrderedState {
  index: OrderedIndex<Row>;
  /** `eq` value (ALL_ROWS without `eq`) → the entries of the rows holding it, ascending by (value, key). */
  groups: Map<unknown, OrderedEntry[]>;
}

const ALL_ROWS = Symbol('all rows');

/** The row as it was before a write (undefined: it did not exist); replayed backwards on rollback. */
interface Undo {
  state: TableState;
  key: string;
  before: Row | undefined;
}

export interface MemoryStoreOptions {
  /** How long an operation waits for a running transaction before failing (default 10 s). */
  lockTimeoutMs?: number;
}

export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const tables = new Map<string, TableState>();
  const counters = new Map<string, CounterState>();
  const lock = new Mutex(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  let closed = false;

  function stateOf(spec: Spec): TableState {
    const state = tables.get(spec.name);
    if (!state) throw new Error(`table ${spec.name} has not been migrated`);
    return state;
  }

  /** Store-level operations run at once unless a transaction holds the lock; then they queue behind it. */
  const runOnStore: Runner = (f) => {
    if (closed) return Promise.reject(new Error('the store is closed'));
    if (!lock.locked) return attempt(f);
    return lock.run(() => {
      if (closed) throw new Error('the store is closed');
      return f();
    });
  };

  function makeOps(run: Runner, log: Undo[] | undefined): StoreOps {
    const write = (state: TableState, key: string, after: Row | undefined): void => {
      if (after) checkUnique(state, key, after);
      log?.push({ state, key, before: state.rows.get(key) });
      put(state, key, after);
    };

    const ops: StoreOps = {
      get: (t, key) => run(() => {
        const row = stateOf(t).rows.get(key);
        return row && copyOut(t, row);
      }),

      findOne: (t, column, value) => run(() => {
        assertIndexed(t, column, true);
        const state = stateOf(t);
        const key = column === t.key ? value : indexOf(state.unique, t, column).get(indexValue(value));
        const row = typeof key === 'string' ? state.rows.get(key) : undefined;
        return row && copyOut(t, row);
      }),

      findMany: (t, column, value, limit = DEFAULT_LIMIT) => run(() => {
        assertIndexed(t, column, false);
        checkLimit(limit);
        const state = stateOf(t);
        return [...keysWith(state, t, column, value)].slice(0, limit).map((key) => copyOut(t, state.rows.get(key)!));
      }),

      insert: (t, row) => run(() => {
        const state = stateOf(t);
        const stored = copyIn(t, row);
        const key = stored[t.key] as string;
        if (state.rows.has(key)) throw new DuplicateKeyError(t.name, t.key);
        write(state, key, stored);
      }),

      // Nothing to send ahead: every write here completes before it returns.
      append: (t, row) => ops.insert(t, row),

      insertIfAbsent: (t, row) => run(() => {
        const state = stateOf(t);
        const stored = copyIn(t, row);
        const key = stored[t.key] as string;
        if (state.rows.has(key)) return false;
        write(state, key, stored);
        return true;
      }),

      update: (t, key, patch, where) => run(() => {
        const state = stateOf(t);
        const before = state.rows.get(key);
        if (!before || !matches(t, before, where)) return false;
        write(state, key, patched(t, before, patch));
        return true;
      }),

      updateWhere: (t, column, value, patch, where) => run(() => {
        assertIndexed(t, column, false);
        const state = stateOf(t);
        const keys = [...keysWith(state, t, column, value)].filter((key) => matches(t, state.rows.get(key)!, where));
        // All or nothing, like one SQL statement: undo this call's own writes if one of them collides.
        const local: Undo[] = [];
        try {
          for (const key of keys) {
            const after = patched(t, state.rows.get(key)!, patch);
            checkUnique(state, key, after);
            local.push({ state, key, before: state.rows.get(key) });
            put(state, key, after);
          }
        } catch (error) {
          undo(local);
          throw error;
        }
        log?.push(...local);
        return keys.length;
      }),

      consumeOne: (t, key, where) => run(() => {
        const state = stateOf(t);
        const row = state.rows.get(key);
        if (!row || !matches(t, row, where)) return undefined;
        write(state, key, undefined);
        return copyOut(t, row);
      }),

      takeDue: (t, column, now, limit) => run(() => {
        const state = stateOf(t);
        const due = dueRows(state, t, column, now, limit);
        for (const [key] of due) write(state, key, undefined);
        return due.map(([, row]) => copyOut(t, row));
      }),

      findDue: (t, column, now, limit) => run(() => dueRows(stateOf(t), t, column, now, limit).map(([, row]) => copyOut(t, row))),

      delete: (t, key) => run(() => {
        const state = stateOf(t);
        if (!state.rows.has(key)) return false;
        write(state, key, undefined);
        return true;
      }),

      page: (t, query) => run(() => {
        const state = stateOf(t);
        return pageKeys(state, t, query).map((key) => copyOut(t, state.rows.get(key)!));
      }),

      count: (t, where) => run(() => {
        assertCountable(t, where);
        const state = stateOf(t);
        let n = 0;
        for (const key of candidateKeys(state, t, where)) if (matches(t, state.rows.get(key)!, where)) n++;
        return n;
      }),

      // Counters are deliberately not in the undo log: a failed transaction keeps its increments.
      incrementWithin: (key, windowMs, now) => run(() => {
        const current = counters.get(key);
        const next = current && now < current.resetAt ? { count: current.count + 1, resetAt: current.resetAt } : { count: 1, resetAt: now + windowMs };
        counters.set(key, next);
        return { ...next };
      }),

      incrementTiers: (tiers, now) => incrementTiersInTurn(ops, tiers, now),

      peekCounter: (key, now) => run(() => {
        const current = counters.get(key);
        return current && now < current.resetAt ? { ...current } : undefined;
      }),

      clearCounter: (key) => run(() => counters.delete(key)),
    };
    return ops;
  }

  const storeOps = makeOps(runOnStore, undefined);

  return {
    kind: 'memory',
    ...storeOps,

    migrate: (specs) => runOnStore(() => {
      for (const spec of specs) {
        validateSpec(spec);
        const state = tables.get(spec.name) ?? { spec, rows: new Map(), unique: new Map(), indexed: new Map(), ordered: new Map() };
        state.spec = spec;
        rebuildIndexes(state);
        tables.set(spec.name, state);
      }
    }),

    async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
      if (closed) throw new Error('the store is closed');
      await lock.acquire();
      const log: Undo[] = [];
      let open = true;
      const runInTx: Runner = (f) => (open ? attempt(f) : Promise.reject(new Error('the transaction has ended')));
      const tx: StoreTx = {
        ...makeOps(runInTx, log),
        transaction: (inner) => (open ? inner(tx) : Promise.reject(new Error('the transaction has ended'))),
      };
      try {
        if (closed) throw new Error('the store is closed');
        return await fn(tx);
      } catch (error) {
        undo(log);
        throw error;
      } finally {
        open = false;
        lock.release();
      }
    },

    purgeExpired: (now) => runOnStore(() => {
      let deleted = 0;
      for (const state of tables.values()) {
        const column = state.spec.expiresAt;
        if (!column) continue;
        for (const [key, row] of state.rows) {
          const expiresAt = row[column];
          if (typeof expiresAt === 'number' && expiresAt < now) {
            put(state, key, undefined);
            deleted++;
          }
        }
      }
      for (const [key, counter] of counters) {
        if (counter.resetAt <= now) {
          counters.delete(key);
          deleted++;
        }
      }
      return deleted;
    }),

    close: () => runOnStore(() => {
      closed = true;
    }),
  };
}

function copyValue(kind: ColumnKind, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  return kind === 'json' ? structuredClone(value) : value;
}

function copyIn(spec: Spec, row: Row): Row {
  if (typeof row[spec.key] !== 'string') throw new TypeError(`${spec.name}.${spec.key} must be a string`);
  const out: Row = {};
  for (const [column, kind] of Object.entries(spec.columns)) out[column] = copyValue(kind, row[column]);
  return out;
}

/** A fresh object with every column of `spec` (columns added by a later migration read as null). */
function copyOut<R extends Row>(spec: TableSpec<R>, row: Row): R {
  const out: Row = {};
  for (const [column, kind] of Object.entries(spec.columns) as [string, ColumnKind][]) out[column] = copyValue(kind, row[column]);
  return out as R;
}

function patched(spec: Spec, before: Row, patch: Row): Row {
  const after = { ...before };
  for (const [column, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    if (column === spec.key) throw new Error(`${spec.name}.${column} is the key and cannot be updated`);
    after[column] = copyValue(kind, value);
  }
  return after;
}

function matches(spec: Spec, row: Row, where: Where<any> | undefined): boolean {
  if (!where) return true;
  for (const [column, wanted] of Object.entries(where)) {
    if (wanted === undefined) continue;
    const kind = kindOf(spec, column);
    const actual = row[column] ?? null;
    if (wanted === null || actual === null) {
      if (wanted !== actual) return false;
    } else if (kind === 'json' ? JSON.stringify(actual) !== JSON.stringify(wanted) : actual !== wanted) {
      return false;
    }
  }
  return true;
}

/** Index maps compare by value, so objects (json columns) are keyed by their JSON text. */
function indexValue(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : value;
}

function indexOf<V>(indexes: Map<string, V>, spec: Spec, column: string): V {
  const index = indexes.get(column);
  if (!index) throw new Error(`${spec.name}.${column} is not indexed in the migrated spec; migrate the table first`);
  return index;
}

function keysWith(state: TableState, spec: Spec, column: string, value: string | number): Iterable<string> {
  if (column === spec.key) return typeof value === 'string' && state.rows.has(value) ? [value] : [];
  if (state.unique.has(column)) {
    const key = state.unique.get(column)!.get(indexValue(value));
    return key === undefined ? [] : [key];
  }
  return indexOf(state.indexed, spec, column).get(indexValue(value)) ?? [];
}

function checkUnique(state: TableState, key: string, row: Row): void {
  for (const [column, index] of state.unique) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    const owner = index.get(indexValue(value));
    if (owner !== undefined && owner !== key) throw new DuplicateKeyError(state.spec.name, column);
  }
}

/** Replaces (or with undefined, removes) a row and keeps the indexes in step. No checks. */
function put(state: TableState, key: string, row: Row | undefined): void {
  const before = state.rows.get(key);
  if (before) {
    for (const [column, index] of state.unique) {
      const value = before[column];
      if (value !== null && value !== undefined) index.delete(indexValue(value));
    }
    for (const [column, index] of state.indexed) {
      const value = indexValue(before[column] ?? null);
      const keys = index.get(value);
      keys?.delete(key);
      if (keys?.size === 0) index.delete(value);
    }
  }
  for (const ordered of state.ordered.values()) moveOrderedEntry(ordered, key, before, row);
  if (!row) {
    state.rows.delete(key);
    return;
  }
  state.rows.set(key, row);
  for (const [column, index] of state.unique) {
    const value = row[column];
    if (value !== null && value !== undefined) index.set(indexValue(value), key);
  }
  for (const [column, index] of state.indexed) {
    const value = indexValue(row[column] ?? null);
    const keys = index.get(value);
    if (keys) keys.add(key);
    else index.set(value, new Set([key]));
  }
}

/** Rows whose `column` is below `now`, oldest first. Memory is the test backend: this scan never backs a deployment. */
function dueRows(state: TableState, spec: Spec, column: string, now: number, limit: number): [string, Row][] {
  assertIndexed(spec, column, false);
  checkLimit(limit);
  return [...state.rows]
    .filter(([, row]) => typeof row[column] === 'number' && (row[column] as number) < now)
    .sort(([, a], [, b]) => (a[column] as number) - (b[column] as number))
    .slice(0, limit);
}

/** The keys of one page, read from the ordered index: a binary search for where it starts, then `limit` steps. */
function pageKeys(state: TableState, spec: Spec, query: PageQuery<any>): string[] {
  const { index, bounds } = planPage(spec, query);
  const ordered = state.ordered.get(orderedIndexName(spec, index));
  if (!ordered) throw new Error(`${spec.name} has no ordered index on ${index.by} in the migrated spec; migrate the table first`);
  const entries = ordered.groups.get(query.where === undefined ? ALL_ROWS : indexValue(query.where.value)) ?? [];
  const keys: string[] = [];
  for (let i = startOfPage(entries, bounds) - 1; i >= 0 && keys.length < query.limit; i--) {
    const entry = entries[i]!;
    if (bounds.from !== undefined && (entry.value as number) < bounds.from) break;
    keys.push(entry.key);
  }
  return keys;
}

/** Where the page's first entry is, plus one (a page reads downwards): the entries before it are those below `bounds.below`. */
function startOfPage(entries: readonly OrderedEntry[], bounds: PageBounds): number {
  const below = bounds.below;
  return below ? firstNotBelow(entries, below) : entries.length;
}

function compareEntries(a: OrderedEntry, b: OrderedEntry): number {
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return 0;
}

/** Binary search: the first position whose entry is not below `target` (entries.length when all are). */
function firstNotBelow(entries: readonly OrderedEntry[], target: OrderedEntry): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareEntries(entries[middle]!, target) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Where a row sits in an ordered index; none when its order value is null (such rows are on no page). */
function orderedPlace(index: OrderedIndex<Row>, key: string, row: Row | undefined): { group: unknown; entry: OrderedEntry } | undefined {
  const value = row?.[index.by];
  if (value === null || value === undefined) return undefined;
  const group = index.eq === undefined ? ALL_ROWS : indexValue(row![index.eq] ?? null);
  return { group, entry: { value: value as string | number, key } };
}

/** Keeps an ordered index in step with a write; a write that changes neither the order value nor `eq` leaves it alone. */
function moveOrderedEntry(ordered: OrderedState, key: string, before: Row | undefined, after: Row | undefined): void {
  const from = orderedPlace(ordered.index, key, before);
  const to = orderedPlace(ordered.index, key, after);
  if (from && to && from.group === to.group && from.entry.value === to.entry.value) return;
  if (from) {
    const entries = ordered.groups.get(from.group)!;
    entries.splice(firstNotBelow(entries, from.entry), 1);
    if (entries.length === 0) ordered.groups.delete(from.group);
  }
  if (to) {
    let entries = ordered.groups.get(to.group);
    if (!entries) ordered.groups.set(to.group, (entries = []));
    entries.splice(firstNotBelow(entries, to.entry), 0, to.entry);
  }
}

/** An ordered index built whole: sorted once, rather than row by row. */
function buildOrdered(index: OrderedIndex<Row>, rows: Map<string, Row>): OrderedState {
  const groups = new Map<unknown, OrderedEntry[]>();
  for (const [key, row] of rows) {
    const place = orderedPlace(index, key, row);
    if (!place) continue;
    let entries = groups.get(place.group);
    if (!entries) groups.set(place.group, (entries = []));
    entries.push(place.entry);
  }
  for (const entries of groups.values()) entries.sort(compareEntries);
  return { index, groups };
}

/**
 * The keys `count` looks at: those an indexed column of `where` leads to. Only a `where` whose
 * indexed columns are all unique ones asking for null has none (a unique index holds no nulls here):
 * then every row. Memory is the test backend; that scan never backs a deployment.
 */
function candidateKeys(state: TableState, spec: Spec, where: Where<any>): Iterable<string> {
  for (const [column, value] of Object.entries(where)) {
    if (value === undefined || value === null) continue;
    if (column === spec.key || state.unique.has(column) || state.indexed.has(column)) return keysWith(state, spec, column, value as string | number);
  }
  for (const [column, value] of Object.entries(where)) {
    if (value === null && state.indexed.has(column)) return state.indexed.get(column)!.get(null) ?? [];
  }
  return state.rows.keys();
}

function undo(log: Undo[]): void {
  for (let i = log.length - 1; i >= 0; i--) {
    const entry = log[i]!;
    put(entry.state, entry.key, entry.before);
  }
  log.length = 0;
}

function rebuildIndexes(state: TableState): void {
  const { spec } = state;
  const rows = [...state.rows];
  state.rows = new Map();
  state.unique = new Map((spec.unique ?? []).map((column) => [column, new Map()]));
  const eqColumns = (spec.ordered ?? []).flatMap((index) => (index.eq === undefined ? [] : [index.eq]));
  const indexed = new Set([...(spec.indexed ?? []), ...eqColumns].filter((c) => !spec.unique?.includes(c)));
  state.indexed = new Map([...indexed].map((column) => [column, new Map()]));
  state.ordered = new Map();
  for (const [key, row] of rows) {
    checkUnique(state, key, row);
    put(state, key, row);
  }
  state.ordered = new Map((spec.ordered ?? []).map((index) => [orderedIndexName(spec, index), buildOrdered(index, state.rows)]));
}
