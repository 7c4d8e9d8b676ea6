import { open } from 'node:fs/promises';
import type pg from 'pg';

/** Reads a file from start to end, a MiB at a time, so that the OS keeps it in its page cache. */
export async function readThrough(path: string): Promise<string> {
  const file = await open(path, 'r');
  let bytes = 0;
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let read; (read = (await file.read(buffer, 0, buffer.length, null)).bytesRead) > 0; ) bytes += read;
  } finally {
    await file.close();
  }
  return `the database file read through (${(bytes / 2 ** 20).toFixed(0)} MiB)`;
}

/**
 * VACUUM ANALYZE, as a database that has served a while has been, then every table, index and TOAST
 * table read into the OS's page cache by `pg_prewarm` (its `read` mode; PostgreSQL's own contrib
 * module, which only a superuser may create): after a fill, which leaves no dead rows, VACUUM skips
 * the indexes. Without `pg_prewarm`, the report says so and the rounds run on what VACUUM left.
 */
export async function vacuumAndReadThrough(client: pg.Client): Promise<string> {
  await client.query('VACUUM ANALYZE');
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_prewarm');
    const { rows } = await client.query<{ bytes: string }>(
      `SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) * current_setting('block_size')::bigint AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't')`,
    );
    return `VACUUM ANALYZE, then every table and index read through with pg_prewarm (${(Number(rows[0]!.bytes) / 2 ** 20).toFixed(0)} MiB)`;
  } catch (error) {
    return `VACUUM ANALYZE only: the indexes were not read through (pg_prewarm: ${error instanceof Error ? error.message : String(error)})`;
  }
}
