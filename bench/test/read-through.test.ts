import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN_URL, createBenchDatabase, withPgClient, type BenchDatabase } from '../src/postgres.ts';
import { readThrough, vacuumAndReadThrough } from '../src/growth/read-through.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  const failed: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failed.push(error);
    }
  }
  if (failed.length) throw failed[0];
});

describe('what the growth section reads through after a fill', () => {
  it('reads a SQLite file from start to end and says how much', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authmd-read-through-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'authmd.db'), Buffer.alloc(3 * 2 ** 20 + 5));
    expect(await readThrough(join(dir, 'authmd.db'))).toBe('the database file read through (3 MiB)');
  });

  it('vacuums a PostgreSQL database, then reads every table and index of it with pg_prewarm', async () => {
    const database: BenchDatabase = await createBenchDatabase();
    cleanups.push(() => database.drop());
    const said = await withPgClient(database.url, async (client) => {
      await client.query('CREATE TABLE rows (id text PRIMARY KEY, body text)');
      await client.query("INSERT INTO rows SELECT 'row-' || i, repeat('x', 500) FROM generate_series(1, 20000) AS i");
      const read = await vacuumAndReadThrough(client);
      const { rows } = await client.query<{ bytes: string; analysed: string | null }>(
        `SELECT sum(pg_relation_size(c.oid)) AS bytes, (SELECT last_analyze::text FROM pg_stat_user_tables WHERE relname = 'rows') AS analysed
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't')`,
      );
      return { read, mib: (Number(rows[0]!.bytes) / 2 ** 20).toFixed(0), analysed: rows[0]!.analysed };
    });
    // The table and its key's index (about 11 MiB here), all of them, and ANALYZE ran.
    expect(said.read).toBe(`VACUUM ANALYZE, then every table and index read through with pg_prewarm (${said.mib} MiB)`);
    expect(Number(said.mib)).toBeGreaterThan(5);
    expect(said.analysed).not.toBeNull();
  }, 60_000);

  it('says so, and still vacuums, when the user may not create pg_prewarm', async () => {
    // The role goes after its database: cleanups run last first.
    const role = `authmd_bench_plain_${randomBytes(6).toString('hex')}`;
    await withPgClient(ADMIN_URL, (client) => client.query(`CREATE ROLE "${role}" LOGIN NOSUPERUSER`));
    cleanups.push(() => withPgClient(ADMIN_URL, async (client) => void (await client.query(`DROP ROLE IF EXISTS "${role}"`))));
    const database: BenchDatabase = await createBenchDatabase();
    cleanups.push(() => database.drop());
    await withPgClient(ADMIN_URL, (client) => client.query(`ALTER DATABASE "${database.name}" OWNER TO "${role}"`));
    const asRole = new URL(database.url);
    asRole.username = role;
    const said = await withPgClient(asRole.toString(), async (client) => {
      await client.query('CREATE TABLE rows (id text PRIMARY KEY)');
      const read = await vacuumAndReadThrough(client);
      const { rows } = await client.query<{ analysed: string | null }>("SELECT last_analyze::text AS analysed FROM pg_stat_user_tables WHERE relname = 'rows'");
      return { read, analysed: rows[0]!.analysed };
    });
    expect(said.analysed).not.toBeNull();
    expect(said.read).toMatch(/^VACUUM ANALYZE only: the indexes were not read through \(pg_prewarm: permission denied to create extension "pg_prewarm"/);
  }, 60_000);
});
