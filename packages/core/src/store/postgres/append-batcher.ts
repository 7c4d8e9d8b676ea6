import type pg from 'pg';
import { StoreUnavailableError, type Row } from '../contract.ts';
import { createBatcher, entryOf } from './batcher.ts';
import { asDuplicateKey } from './errors.ts';
import { columnType, q, type Compiled, type Runner } from './sql.ts';

/**
 * Appended rows per statement. Rows go as one array per column, so a statement's parameters do not
 * grow with its rows; this bounds the size of one statement (and of its answer to a failure) for a
 * bulk import, which appends tens of thousands.
 */
const ROWS_PER_STATEMENT = 1000;
/** A transaction that appends at most this many rows (and nothing else) joins the append batcher. */
export const BATCHED_TRANSACTION_ROWS = 32;

/** Appended rows cut into statements (a bulk import appends tens of thousands). */
export function statementsFor<T>(rows: readonly T[]): T[][] {
  const statements: T[][] = [];
  for (let at = 0; at < rows.length; at += ROWS_PER_STATEMENT) statements.push(rows.slice(at, at + ROWS_PER_STATEMENT));
  return statements;
}

/** A row appended in a transaction, waiting to be sent. */
export interface HeldRow {
  c: Compiled;
  values: unknown[];
}

/** A row a rerunnable transaction read without a lock, and its version then (`xmin`). */
export interface Guard {
  c: Compiled;
  key: unknown;
  xmin: string;
}

/** What a transaction that only appended hands to the append batcher: its rows, written only while its guard holds. */
export interface AppendOnly {
  rows: readonly HeldRow[];
  guard?: Guard;
}

/** The row a rerunnable transaction read without a lock changed before the transaction wrote: it runs again. */
export class RowChangedError extends Error {
  override readonly name = 'RowChangedError';
  constructor() {
    super('the row this transaction read changed before it wrote; it runs again');
  }
}

/** Rows inserted by one statement, outside the append batcher (a transaction's rows, sent ahead of its next statement). */
export function insertRows(rows: readonly HeldRow[]): { text: string; values: unknown[] } {
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
export function createAppendBatcher(run: Runner): (item: AppendOnly) => Promise<void> {
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
export function appendStatement(items: readonly AppendOnly[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const array = (value: unknown[], type: string) => `$${values.push(value)}::${type}[]`;
  const guards = new Map<Compiled, { transactions: number[]; keys: unknown[]; versions: string[] }>();
  const tables = new Map<Compiled, { columns: unknown[][]; transactions: (number | null)[] }>();
  items.forEach((item, i) => {
    if (item.guard) {
      const { c, key, xmin } = item.guard;
      const guard = entryOf(guards, c, () => ({ transactions: [], keys: [], versions: [] }));
      guard.transactions.push(i);
      guard.keys.push(key);
      guard.versions.push(xmin);
    }
    for (const row of item.rows) {
      const table = entryOf(tables, row.c, () => ({ columns: row.c.columns.map(() => []), transactions: [] }));
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

/** A unique violation among appended rows, as the DuplicateKeyError of the table PostgreSQL names. */
export function duplicateIn(rows: readonly HeldRow[], error: unknown): unknown {
  const table = (error as { table?: unknown }).table;
  const spec = rows.find((row) => row.c.spec.name === table)?.c.spec ?? rows[0]!.c.spec;
  return asDuplicateKey(spec, error);
}

