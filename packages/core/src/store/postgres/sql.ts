import type pg from 'pg';
import type { ColumnKind, OrderedIndex, PageQuery, Row, TableSpec, Where } from '../contract.ts';
import { kindOf, type PageBounds } from '../shared.ts';
import { encode, encodeKey } from './encoding.ts';

/** The SQL that the PostgreSQL store's statements are made of: names, types, clauses, pages. */

export type Spec = TableSpec<any>;

export const SQL_TYPE: Record<ColumnKind, string> = { text: 'TEXT', integer: 'BIGINT', boolean: 'BOOLEAN', json: 'JSONB' };

export const q = (name: string): string => `"${name}"`;

export interface Compiled {
  spec: Spec;
  table: string;
  columns: string[];
  selectList: string;
}

/** Something that runs a query: the pool, or a transaction's client. */
export type Runner = (text: string, values?: unknown[]) => Promise<pg.QueryResult<Row>>;

/** The SQL type of a row's k-th value, for the array its column goes in (`unnest`) when rows are appended. */
export function columnType(c: Compiled, k: number): string {
  const column = c.columns[k]!;
  return column === c.spec.key ? 'text' : SQL_TYPE[c.spec.columns[column] as ColumnKind].toLowerCase();
}

/** `$1, $2, …` for one row of every column, JSON ones cast. */
export function placeholders(c: Compiled): string {
  return c.columns.map((col, i) => `$${i + 1}${c.spec.columns[col] === 'json' ? '::jsonb' : ''}`).join(', ');
}

function param(kind: ColumnKind, params: unknown[], value: unknown): string {
  params.push(encode(kind, value));
  return kind === 'json' ? `$${params.length}::jsonb` : `$${params.length}`;
}

export function setClause(spec: Spec, patch: Row, params: unknown[]): string {
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

export function whereClause(spec: Spec, where: Where<any> | undefined, params: unknown[]): string {
  let sql = '';
  for (const [column, value] of Object.entries(where ?? {})) {
    if (value === undefined) continue;
    const kind = kindOf(spec, column);
    sql += value === null ? ` AND ${q(column)} IS NULL` : ` AND ${q(column)} = ${param(kind, params, value)}`;
  }
  return sql;
}
/**
 * Text in an ordered index, and in the queries it serves, compares byte by byte (`COLLATE "C"`): the
 * same order as SQLite's, whatever the database's locale, and a row comparison PostgreSQL can seek to
 * in the index only when its collation is the index's.
 */
export function orderedColumn(spec: Spec, column: string): string {
  return spec.columns[column] === 'text' ? `${q(column)} COLLATE "C"` : q(column);
}

/**
 * One index range, read backwards: `eq = $n` pins the group, `(by, key) < ($n, $m)` is where the page
 * starts and `by >= $n` (or `by IS NOT NULL`) where it stops; no sort. Its values go into `params`.
 */
export function pageSql(c: Compiled, index: OrderedIndex<any>, query: PageQuery<any>, bounds: PageBounds, params: unknown[]): string {
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

