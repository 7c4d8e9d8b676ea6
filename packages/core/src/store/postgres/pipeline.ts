import type { Row } from '../contract.ts';
import { BATCHED_TRANSACTION_ROWS, duplicateIn, insertRows, RowChangedError, statementsFor, type AppendOnly, type Guard, type HeldRow } from './append-batcher.ts';
import type { KeyReader } from './key-reader.ts';
import { q, type Compiled, type Runner } from './sql.ts';

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
export interface Pipeline {
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

export function createPipeline(base: Runner, appendOnly: (item: AppendOnly) => Promise<void>, unlocked?: KeyReader): Pipeline {
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

