import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { processCpuSeconds } from './child.ts';

/**
 * Throwaway PostgreSQL databases for the replica scenarios: `authmd_bench_<random>`, created through
 * BENCH_PG_URL (default: the local server's `postgres` database, user postgres) and dropped after.
 */
export const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  name: string;
  url: string;
  /**
   * CPU seconds used so far by the server processes (backends) connected to this database, read from
   * /proc: PostgreSQL's share of the machine. Backends that ended before the call are not counted,
   * so read it while the servers' pools are open. Undefined where /proc is not readable.
   */
  backendCpuSeconds(): Promise<number | undefined>;
  drop(): Promise<void>;
}

/** One connection to `url` for the length of `f`. */
export async function withPgClient<T>(url: string, f: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

const admin = <T>(f: (client: pg.Client) => Promise<T>): Promise<T> => withPgClient(ADMIN_URL, f);

export async function postgresAvailable(): Promise<string | undefined> {
  try {
    return await admin(async (client) => (await client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v);
  } catch {
    return undefined;
  }
}

/** The settings that decide what a commit costs, for the report. */
export async function postgresSettings(): Promise<Record<string, string>> {
  return admin(async (client) => {
    const names = ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'max_connections'];
    const { rows } = await client.query<{ name: string; setting: string; unit: string | null }>(
      'SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)',
      [names],
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.setting + (r.unit && r.unit !== '' ? ` ×${r.unit}` : '')]));
  });
}

/**
 * BENCH_PG_SYNCHRONOUS_COMMIT=off (a diagnostic, not a recommendation): the bench databases commit
 * without waiting for the WAL flush, to show how much of a request's time is the disk's fsync.
 */
export const synchronousCommit = process.env.BENCH_PG_SYNCHRONOUS_COMMIT || undefined;
if (synchronousCommit !== undefined && !['on', 'off', 'local', 'remote_write', 'remote_apply'].includes(synchronousCommit)) {
  throw new Error(`BENCH_PG_SYNCHRONOUS_COMMIT must be on, off, local, remote_write or remote_apply (got "${synchronousCommit}")`);
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `authmd_bench_${randomBytes(6).toString('hex')}`;
  await admin(async (client) => {
    await client.query(`CREATE DATABASE "${name}"`);
    if (synchronousCommit !== undefined) await client.query(`ALTER DATABASE "${name}" SET synchronous_commit = ${synchronousCommit}`);
  });
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  /** The last CPU reading of every backend seen: one that ended between two readings keeps its last. */
  const seen = new Map<number, number>();
  return {
    name,
    url: url.toString(),
    backendCpuSeconds: async () => {
      const { rows } = await admin((client) => client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]));
      for (const { pid } of rows) {
        const seconds = processCpuSeconds(pid);
        if (seconds === undefined) return undefined;
        seen.set(pid, seconds);
      }
      return [...seen.values()].reduce((a, b) => a + b, 0);
    },
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}
