import type { Row } from '../contract.ts';
import { createBatcher, entryOf, type Waiting } from './batcher.ts';
import { q, type Compiled, type Runner } from './sql.ts';

/** A row by its key, read without a lock, with its version (`authmd_xmin`). */
export type KeyReader = (c: Compiled, key: unknown) => Promise<Row | undefined>;

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
export function createKeyReader(run: Runner): KeyReader {
  const read = createBatcher<{ c: Compiled; key: string }, Row | undefined>({
    inFlight: READS_IN_FLIGHT,
    cost: () => 1,
    budget: KEYS_PER_READ,
    async send(batch) {
      const tables = new Map<Compiled, Waiting<{ c: Compiled; key: string }, Row | undefined>[]>();
      for (const waiting of batch) entryOf(tables, waiting.input.c, () => []).push(waiting);
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

