import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pgDriver } from '../packages/core/src/store/postgres/driver.ts';

/**
 * Throwaway PostgreSQL databases for tests. The admin connection (AUTHMD_TEST_PG_URL, default the
 * local server's `postgres` database) creates `authmd_test_<random>` and drops it afterwards.
 */
export const ADMIN_URL = process.env.AUTHMD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * One connection to `url` for the length of `f`, through `pg` loaded on first use, as the store loads
 * it: most test files that import this module never need one.
 */
async function connected<T>(url: string, f: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new (pgDriver().Client)({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await f(client);
  } finally {
    await client.end();
  }
}

const admin = <T>(f: (client: pg.Client) => Promise<T>): Promise<T> => connected(ADMIN_URL, f);

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `authmd_test_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

export interface LeasedDatabase {
  url: string;
  /** Hands the database back, emptied, for the next service (or drops it). */
  release(): Promise<void>;
}

export interface TestDatabasePool {
  lease(): Promise<LeasedDatabase>;
  /** Drops every database of the pool; later releases drop theirs. */
  close(): Promise<void>;
}

/**
 * Databases for the many services of one test file. A service gets a database no other running
 * service uses, with no rows in it: the first ones are made fresh, and a released one is emptied
 * (`DELETE` of every table but the store's layout version) and handed to the next service. Creating,
 * migrating and dropping a database per service costs ~0.35 s; this ~0.1 s (docs/decisions.md). Each
 * database keeps the connection that empties it, which saves a connection's start and end (~30 ms)
 * per service. With `keepLayout: false` a released database loses its tables too (its schema is
 * dropped and made again), for tests of the layout itself: the next lease is as a new database.
 */
export function testDatabasePool(options: { keepLayout?: boolean } = {}): TestDatabasePool {
  const keepLayout = options.keepLayout ?? true;
  interface Pooled {
    database: TestDatabase;
    /** The connection that empties it, opened at its first release. */
    cleaner?: Promise<pg.Client>;
  }
  const idle: Pooled[] = [];
  const all = new Set<Pooled>();
  let closed = false;

  function cleanerOf(pooled: Pooled): Promise<pg.Client> {
    pooled.cleaner ??= (async () => {
      const client = new (pgDriver().Client)({ connectionString: pooled.database.url, connectionTimeoutMillis: 5000 });
      client.on('error', () => {}); // a connection lost meanwhile fails the next query, which drops the database
      await client.connect();
      // A connection the service left behind must not make the next test wait: give up and drop.
      await client.query(`SET lock_timeout = '2s'`);
      return client;
    })();
    return pooled.cleaner;
  }

  async function empty(pooled: Pooled): Promise<void> {
    const client = await cleanerOf(pooled);
    if (!keepLayout) {
      await client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
      return;
    }
    const tables = await client.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'authmd_schema'`);
    if (tables.rows.length) await client.query(tables.rows.map((t) => `DELETE FROM "${t.name}";`).join(' '));
  }

  async function drop(pooled: Pooled): Promise<void> {
    all.delete(pooled);
    const cleaner = pooled.cleaner;
    pooled.cleaner = undefined;
    await cleaner?.then((client) => client.end()).catch(() => {});
    await pooled.database.drop();
  }

  return {
    async lease() {
      let pooled = idle.pop();
      if (!pooled) {
        pooled = { database: await createTestDatabase() };
        all.add(pooled);
      }
      const leased = pooled;
      return {
        url: leased.database.url,
        release: async () => {
          if (closed) return drop(leased);
          try {
            await empty(leased);
          } catch {
            return drop(leased);
          }
          if (closed) return drop(leased);
          idle.push(leased);
        },
      };
    },
    async close() {
      closed = true;
      idle.length = 0;
      await Promise.all([...all].map(drop));
    },
  };
}

/** A relay in front of the local PostgreSQL, see {@link relay}. */
export interface Relay {
  port: number;
  /** The database goes away: new connections refused, open ones closed. */
  cut(): Promise<void>;
  /**
   * The database stops answering without closing anything (a network partition, a frozen host): new
   * connections are still accepted and held, open ones stay open, and no byte goes through in either
   * direction. What was sent meanwhile is held, as TCP would retransmit it.
   */
  blackHole(): void;
  /**
   * The network is back: held bytes are delivered, and a connection one end of which closed during
   * the black hole is closed at the other end too (as the peer's next packet would be answered with
   * a reset), without delivering what that end had sent.
   */
  restore(): void;
}

/**
 * A TCP relay in front of the local PostgreSQL: closing it is the database going away (refused new
 * connections, dropped open ones) without touching the server other tests use; a black hole is the
 * database no longer answering (see {@link Relay.blackHole}).
 */
export async function relay(target: URL, port = 0): Promise<Relay> {
  const sockets = new Set<Socket>();
  interface Direction {
    from: Socket;
    to: Socket;
    held: Buffer[];
    /** `from` closed while in the black hole: `to` learns of it on restore. */
    closed: boolean;
  }
  const directions = new Set<Direction>();
  let silent = false;
  const flush = (d: Direction) => {
    for (const chunk of d.held.splice(0)) if (!d.to.destroyed) d.to.write(chunk);
  };
  const server: Server = createServer((inbound) => {
    const outbound = new Socket();
    outbound.connect(Number(target.port || 5432), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
    }
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      const d: Direction = { from, to, held: [], closed: false };
      directions.add(d);
      from.on('data', (chunk: Buffer) => {
        if (silent) return void d.held.push(chunk);
        // Back-pressure, as pipe() would.
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('close', () => {
        sockets.delete(from);
        if (silent) d.closed = true;
        else {
          directions.delete(d);
          to.destroy();
        }
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut: async () => {
      silent = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      directions.clear();
      await closed;
    },
    blackHole: () => {
      silent = true;
    },
    restore: () => {
      silent = false;
      for (const d of [...directions]) {
        if (d.closed) {
          directions.delete(d);
          d.held.length = 0;
          d.to.destroy();
        } else flush(d);
      }
    },
  };
}
