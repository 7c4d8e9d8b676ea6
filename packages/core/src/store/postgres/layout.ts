import type { ColumnKind } from '../contract.ts';
import { orderedIndexName, orderedIndexPredicate } from '../shared.ts';
import { COUNTERS } from './counters.ts';
import { orderedColumn, q, SQL_TYPE, type Runner, type Spec } from './sql.ts';

/**
 * The store's tables and indexes in the database: what exists (read from the catalog) and the DDL for
 * what is missing. DDL is issued only for what is missing because `ALTER TABLE … ADD COLUMN IF NOT
 * EXISTS` takes an ACCESS EXCLUSIVE lock on its table, and `CREATE INDEX IF NOT EXISTS` a SHARE lock,
 * even when there is nothing to do: a replica starting beside running ones would stall every
 * request on every table, for as long as any open transaction kept it waiting.
 */

/** The table holding the layout's version. */
export const SCHEMA = 'authmd_schema';

/** PostgreSQL keeps identifiers to 63 bytes (NAMEDATALEN − 1) and cuts longer ones silently. */
const MAX_NAME_BYTES = 63;

export interface Layout {
  /** The columns of each of the store's tables that exist, by table name. */
  tables: Map<string, Set<string>>;
  /** The store's indexes that exist, by name. */
  indexes: Set<string>;
  /** The layout version recorded in SCHEMA; undefined when there is none yet. */
  version: number | undefined;
}

/** What makes one table of the layout: the table, each column (for a table that exists), each index. */
export interface TableDdl {
  name: string;
  create: string;
  /** Every column but the key: its `ALTER TABLE … ADD COLUMN` when it is missing. */
  columns: { name: string; add: string }[];
  indexes: { name: string; create: string }[];
}

/** The store's own tables (version, counters), then the callers' tables, in the order they are created. */
export function layoutDdl(specs: readonly Spec[]): TableDdl[] {
  const own: TableDdl[] = [
    { name: SCHEMA, create: `CREATE TABLE IF NOT EXISTS ${SCHEMA} (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`, columns: [], indexes: [] },
    {
      name: COUNTERS,
      create: `CREATE TABLE IF NOT EXISTS ${COUNTERS} (key TEXT PRIMARY KEY NOT NULL, count BIGINT NOT NULL, reset_at BIGINT NOT NULL)`,
      columns: [],
      indexes: [{ name: `${COUNTERS}_reset_at`, create: `CREATE INDEX IF NOT EXISTS ${COUNTERS}_reset_at ON ${COUNTERS} (reset_at)` }],
    },
  ];
  return [...own, ...specs.map(tableDdl)];
}

function tableDdl(spec: Spec): TableDdl {
  const table = q(spec.name);
  const names = Object.keys(spec.columns);
  const definition = (col: string) => `${q(col)} ${col === spec.key ? 'TEXT PRIMARY KEY NOT NULL' : SQL_TYPE[spec.columns[col] as ColumnKind]}`;
  const indexes: TableDdl['indexes'] = [];
  for (const col of spec.unique ?? []) {
    const name = `${spec.name}_${col}_unique`;
    indexes.push({ name, create: `CREATE UNIQUE INDEX IF NOT EXISTS ${q(name)} ON ${table} (${q(col)})` });
  }
  for (const col of [...(spec.indexed ?? []), ...(spec.expiresAt ? [spec.expiresAt] : [])]) {
    if (spec.unique?.includes(col)) continue;
    const name = `${spec.name}_${col}_idx`;
    indexes.push({ name, create: `CREATE INDEX IF NOT EXISTS ${q(name)} ON ${table} (${q(col)})` });
  }
  for (const index of spec.ordered ?? []) {
    const name = orderedIndexName(spec, index);
    const columns = [...(index.eq === undefined ? [] : [q(index.eq)]), orderedColumn(spec, index.by), orderedColumn(spec, spec.key)].join(', ');
    indexes.push({ name, create: `CREATE INDEX IF NOT EXISTS ${q(name)} ON ${table} (${columns})${orderedIndexPredicate(index, q)}` });
  }
  return {
    name: spec.name,
    create: `CREATE TABLE IF NOT EXISTS ${table} (${names.map(definition).join(', ')})`,
    columns: names.filter((col) => col !== spec.key).map((col) => ({ name: col, add: `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${definition(col)}` })),
    indexes,
  };
}

/** What of the layout `ddl` makes exists in the connection's current schema: two catalog reads, no lock on any table. */
export async function readLayout(run: Runner, ddl: readonly TableDdl[]): Promise<Layout> {
  const relations = [...ddl.map((t) => t.name), ...ddl.flatMap((t) => t.indexes.map((i) => i.name))].map(storedName);
  const found = await run(
    `SELECT c.relname AS relation, c.relkind AS kind, a.attname AS column
       FROM pg_catalog.pg_class c
       LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
      WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())
        AND c.relname = ANY($1::text[])`,
    [relations],
  );
  const layout: Layout = { tables: new Map(), indexes: new Set(), version: undefined };
  for (const row of found.rows as { relation: string; kind: string; column: string | null }[]) {
    if (row.kind === 'i' || row.kind === 'I') layout.indexes.add(row.relation);
    else if (row.kind === 'r' || row.kind === 'p') {
      const columns = layout.tables.get(row.relation) ?? new Set<string>();
      if (row.column !== null) columns.add(row.column);
      layout.tables.set(row.relation, columns);
    }
  }
  if (layout.tables.has(SCHEMA)) layout.version = (await run(`SELECT version FROM ${SCHEMA} WHERE id = 1`)).rows[0]?.version as number | undefined;
  return layout;
}

/** The statements of `ddl` that bring `layout` to it, in order: none when it is complete. */
export function missingDdl(ddl: readonly TableDdl[], layout: Layout): string[] {
  const statements: string[] = [];
  for (const table of ddl) {
    const columns = layout.tables.get(storedName(table.name));
    if (!columns) statements.push(table.create);
    else for (const column of table.columns) if (!columns.has(storedName(column.name))) statements.push(column.add);
    for (const index of table.indexes) if (!layout.indexes.has(storedName(index.name))) statements.push(index.create);
  }
  return statements;
}

/** The name as PostgreSQL stores it: cut to 63 bytes. */
function storedName(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= MAX_NAME_BYTES) return name;
  let end = MAX_NAME_BYTES;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence, as PostgreSQL cuts
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * A DDL statement the connection's role was refused (insufficient_privilege), as an error that says
 * what to do: the layout needs a change only the tables' owner can make. Any other error as it is.
 */
export function layoutChangeRefused(ddl: string, error: unknown): unknown {
  if ((error as { code?: unknown } | null)?.code !== '42501') return error;
  return new Error(
    `This database role may not change the store's layout, which needs: ${ddl}. Start once as the tables' owner (the role that created them), then start this role again. PostgreSQL said: ${(error as Error).message}`,
    { cause: error },
  );
}
