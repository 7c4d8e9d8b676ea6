import type { ColumnKind, Row, TableSpec } from '../contract.ts';
import type { Compiled } from './sql.ts';

/**
 * PostgreSQL text and JSONB cannot hold U+0000, which the contract allows (replay keys use it as a
 * separator; a hostile `sub` may carry it). Such strings are stored with U+0000 as U+FFFF '0' and
 * U+FFFF itself as U+FFFF '1': injective, so equality lookups stay exact, and strings holding
 * neither character (all of them in practice) are stored as they are.
 */
const ESCAPE = '\uFFFF';
const NEEDS_ESCAPE = /[\u0000\uFFFF]/;

function encodeText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\u0000\uFFFF]/g, (ch) => (ch === ESCAPE ? `${ESCAPE}1` : `${ESCAPE}0`)) : value;
}

function decodeText(value: string): string {
  return value.includes(ESCAPE) ? value.replace(/\uFFFF([01])/g, (_, digit: string) => (digit === '0' ? '\u0000' : ESCAPE)) : value;
}

/** Whether any string of a JSON value (keys included) holds the escape character; stops at the first. */
function holdsEscape(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(ESCAPE);
  if (Array.isArray(value)) return value.some(holdsEscape);
  if (value !== null && typeof value === 'object') return Object.entries(value).some(([key, entry]) => key.includes(ESCAPE) || holdsEscape(entry));
  return false;
}

/** Applies `f` to every string of a JSON value, object keys included. */
function mapJsonStrings(value: unknown, f: (text: string) => string): unknown {
  if (typeof value === 'string') return f(value);
  if (Array.isArray(value)) return value.map((entry) => mapJsonStrings(entry, f));
  // fromEntries defines properties: a hostile "__proto__" key stays a key, never a prototype.
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, entry]) => [f(key), mapJsonStrings(entry, f)]));
  return value;
}

export function encode(kind: ColumnKind, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (kind === 'json') {
    const text = JSON.stringify(value);
    return NEEDS_ESCAPE.test(text) || text.includes('\\u0000') ? JSON.stringify(mapJsonStrings(value, encodeText)) : text;
  }
  return typeof value === 'string' ? encodeText(value) : value;
}

/** A key or lookup value bound as a query parameter: text, encoded as stored. */
export function encodeKey(value: unknown): unknown {
  return typeof value === 'string' ? encodeText(value) : value;
}

export function encodeRow(c: Compiled, row: Row): unknown[] {
  if (typeof row[c.spec.key] !== 'string') throw new TypeError(`${c.spec.name}.${c.spec.key} must be a string`);
  return c.columns.map((col) => encode(c.spec.columns[col] as ColumnKind, row[col]));
}

/** BIGINT arrives as a string (pg keeps 64-bit precision); the contract's integers are JS numbers. */
export function decode<R extends Row>(spec: TableSpec<R>, row: Row): R {
  const out: Row = {};
  for (const [col, kind] of Object.entries(spec.columns) as [string, ColumnKind][]) {
    const value = row[col] ?? null;
    if (value === null) out[col] = null;
    else if (kind === 'integer') out[col] = Number(value);
    else if (kind === 'text') out[col] = decodeText(value as string);
    else if (kind === 'json') out[col] = holdsEscape(value) ? mapJsonStrings(value, decodeText) : value;
    else out[col] = value;
  }
  return out as R;
}

