import { table, type PageQuery } from '../../src/store/contract.ts';

/**
 * The 100,000-row table of the SQLite and PostgreSQL page tests: `before` is the table as first
 * migrated (no ordered index), `signups` the same table once its spec gained two. Four rows per
 * timestamp (ties), ten tenants; row 0 is the oldest.
 */
export type Signup = { id: string; created_at: number | null; tenant: string | null; note: string | null };
const columns = { id: 'text', created_at: 'integer', tenant: 'text', note: 'text' } as const;
export const before = table<Signup>({ name: 'signups', key: 'id', columns });
export const signups = table<Signup>({ ...before, ordered: [{ by: 'created_at' }, { by: 'created_at', eq: 'tenant' }] });
export const ROWS = 100_000;
export const T0 = 1_700_000_000_000;

export const signup = (i: number): Signup => ({ id: `s${String(i).padStart(6, '0')}`, created_at: T0 + Math.floor(i / 4) * 1000, tenant: `t${i % 10}`, note: null });
export const cursorAt = (i: number) => ({ value: signup(i).created_at!, key: signup(i).id });
export const ids = (rows: Signup[]) => rows.map((row) => row.id);
/** The ids of `n` rows from row `from` down, every `step`-th. */
export const newest = (from: number, n: number, step = 1) => Array.from({ length: n }, (_, k) => signup(from - k * step).id);

/** The first page, a page near the end, and a tenant's page near the end inside a date range. */
export const pages: Record<string, PageQuery<Signup>> = {
  first: { orderBy: 'created_at', limit: 50 },
  deep: { orderBy: 'created_at', after: cursorAt(100), limit: 50 },
  'deep, by tenant, in a range': { orderBy: 'created_at', where: { column: 'tenant', value: 't3' }, after: cursorAt(2003), range: { from: T0, to: T0 + 1_000_000 }, limit: 50 },
};
