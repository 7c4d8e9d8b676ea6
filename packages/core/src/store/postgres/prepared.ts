import { createHash } from 'node:crypto';
import type pg from 'pg';

/**
 * How many distinct statements a store prepares. Each connection keeps the ones it ran, parsed and
 * planned, for its lifetime; the store's statements come from a fixed set of shapes (the tables'
 * lookups, updates, counters and batched inserts), far fewer than this, so the bound only stops a
 * caller whose statements vary without end (an `in` list of every length) from growing every
 * connection's memory with them: past it, a new statement goes unprepared.
 */
export const PREPARED_LIMIT = 256;

/** Statements that run again and again: reads and writes. A migration's DDL runs once and is left unnamed. */
const REPEATED = /^(SELECT|INSERT|UPDATE|DELETE|WITH)\b/;

const nameOf = (text: string): string => `authmd_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;

/**
 * Named (prepared) statements: PostgreSQL parses and plans a named statement once per connection and
 * only binds it afterwards. Unnamed, a registration lookup of twenty columns is parsed and planned at
 * every call: 17,500 such lookups/s against 47,000 prepared (pgbench, 8 clients, this machine), and
 * the same ratio for the exchange's batched insert (docs/decisions.md). The name is a hash of the
 * statement's text: one text has one name on every connection, and two stores sharing a pool (a
 * caller's `pool`) never give one name to two texts, which pg refuses on a connection.
 */
export function createStatementNames(limit = PREPARED_LIMIT): (text: string, values?: unknown[]) => pg.QueryConfig {
  const names = new Map<string, string>();
  return (text, values) => {
    let name = names.get(text);
    if (name === undefined && names.size < limit && REPEATED.test(text)) names.set(text, (name = nameOf(text)));
    return { text, values, name };
  };
}

/** The same call without names, for a pool that cannot keep them (a pooler in transaction mode). */
export function unnamedStatements(text: string, values?: unknown[]): pg.QueryConfig {
  return { text, values };
}
