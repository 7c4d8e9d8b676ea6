import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { table, type Store } from '../../src/store/contract.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { describeStoreContract } from '../../src/store/testing.ts';
import { before, ids, newest, pages, ROWS, signup, signups } from './signups-fixture.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'authmd-sqlite-store-'));
}

/** better-sqlite3 statements share one prototype: spying on it sees each statement's SQL (`source`) and parameters. */
function statementPrototype(): { get: (...params: unknown[]) => unknown; all: (...params: unknown[]) => unknown[]; run: (...params: unknown[]) => unknown } {
  const probe = new Database(':memory:');
  try {
    return Object.getPrototypeOf(probe.prepare('SELECT 1'));
  } finally {
    probe.close();
  }
}

describeStoreContract('sqlite', async () => {
  const dir = tempDir();
  const path = join(dir, 'store.db');
  return {
    store: createSqliteStore({ path }),
    reopen: async () => createSqliteStore({ path }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}, { persistent: true });

describe('sqlite store', () => {
  const tokens = table<{ id: string; hash: string | null; owner: string | null; expires_at: number | null }>({
    name: 'tokens',
    key: 'id',
    columns: { id: 'text', hash: 'text', owner: 'text', expires_at: 'integer' },
    unique: ['hash'],
    indexed: ['owner'],
    expiresAt: 'expires_at',
  });
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function openMigrated() {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'nested', 'deeper', 'store.db'); // the parent directories do not exist yet
    const store = createSqliteStore({ path });
    await store.migrate([tokens]);
    await store.insert(tokens, { id: 't1', hash: 'h1', owner: 'o1', expires_at: 1 });
    return { store, path };
  }

  it('uses WAL and creates the declared indexes', async () => {
    const { store, path } = await openMigrated();
    const peek = new Database(path, { readonly: true });
    try {
      expect(peek.pragma('journal_mode', { simple: true })).toBe('wal');
      const indexes = peek
        .prepare<[], { name: string; sql: string }>("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tokens' AND sql IS NOT NULL")
        .all();
      const byName = Object.fromEntries(indexes.map((i) => [i.name, i.sql]));
      expect(byName['tokens_hash_unique']).toMatch(/^CREATE UNIQUE INDEX/);
      expect(byName['tokens_owner_idx']).toMatch(/^CREATE INDEX/);
      expect(byName['tokens_expires_at_idx']).toMatch(/^CREATE INDEX/);

      const plan = (sql: string) =>
        peek
          .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((row) => row.detail)
          .join('\n');
      // The same statement shape findOne/findMany use.
      const byHash = plan(`SELECT "id", "hash", "owner", "expires_at" FROM "tokens" WHERE "hash" = 'h1' LIMIT 1`);
      expect(byHash).toMatch(/USING (COVERING )?INDEX tokens_hash_unique/);
      expect(byHash).not.toMatch(/\bSCAN\b/);
      expect(plan(`SELECT "id" FROM "tokens" WHERE "owner" = 'o1' LIMIT 1000`)).toMatch(/USING (COVERING )?INDEX tokens_owner_idx/);
      expect(plan(`SELECT rowid FROM "tokens" WHERE "expires_at" IS NOT NULL AND "expires_at" < 5 LIMIT 500`)).toMatch(
        /USING (COVERING )?INDEX tokens_expires_at_idx/,
      );
    } finally {
      peek.close();
      await store.close();
    }
  });

  it('makes committed writes visible to another connection', async () => {
    const { store, path } = await openMigrated();
    await store.transaction(async (tx) => tx.insert(tokens, { id: 't2', hash: 'h2', owner: null, expires_at: null }));
    const peek = new Database(path, { readonly: true });
    expect(peek.prepare('SELECT count(*) AS n FROM tokens').get()).toEqual({ n: 2 });
    peek.close();
    await store.close();
  });

  it('works in memory and with synchronous = FULL', async () => {
    const dir = tempDir();
    dirs.push(dir);
    for (const store of [createSqliteStore({ path: ':memory:' }), createSqliteStore({ path: join(dir, 'full.db'), synchronous: 'FULL' })]) {
      expect(store.kind).toBe('sqlite');
      await store.migrate([tokens]);
      await store.insert(tokens, { id: 'a', hash: null, owner: null, expires_at: null });
      expect(await store.get(tokens, 'a')).toEqual({ id: 'a', hash: null, owner: null, expires_at: null });
      await store.close();
    }
  });


  it('takes a page cache size in MiB, and refuses one that is not a positive size', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const store = createSqliteStore({ path: join(dir, 'cache.db'), cacheMiB: 8 });
    await store.migrate([tokens]);
    await store.insert(tokens, { id: 'a', hash: null, owner: null, expires_at: null });
    expect((await store.get(tokens, 'a'))?.id).toBe('a');
    await store.close();
    for (const cacheMiB of [0, -1, Number.NaN, 1e9]) {
      expect(() => createSqliteStore({ path: join(dir, 'refused.db'), cacheMiB })).toThrow(/cacheMiB/);
    }
  });
  it('refuses unsafe table and column names', async () => {
    const store = createSqliteStore({ path: ':memory:' });
    await expect(store.migrate([{ ...tokens, name: 'tokens; DROP TABLE x' }])).rejects.toThrow(/invalid/);
    await expect(store.migrate([{ ...tokens, columns: { ...tokens.columns, 'Bad"col': 'text' } }])).rejects.toThrow(/invalid/);
    await store.migrate([tokens]);
    await expect(store.update(tokens, 'a', { ['x" = 1; --' as 'hash']: 'v' })).rejects.toThrow(/no column/);
    await store.close();
  });

  it('fails, rather than hangs, when a transaction uses the store instead of its handle', async () => {
    const store = createSqliteStore({ path: ':memory:', lockTimeoutMs: 100 });
    await store.migrate([tokens]);
    await expect(store.transaction(async () => store.get(tokens, 'a'))).rejects.toThrow(/instead of the transaction handle/);
    await store.insert(tokens, { id: 'a', hash: null, owner: null, expires_at: null });
    expect(await store.get(tokens, 'a')).toBeDefined();
    await store.close();
  });

  it('binds no bare LIMIT parameter in the lookups requests make (SQLite plans such a statement again at every new value)', async () => {
    const { store } = await openMigrated();
    const prototype = statementPrototype();
    const get = vi.spyOn(prototype, 'get');
    const all = vi.spyOn(prototype, 'all');
    try {
      expect((await store.get(tokens, 't1'))?.owner).toBe('o1');
      expect((await store.findOne(tokens, 'hash', 'h1'))?.id).toBe('t1');
      expect((await store.findMany(tokens, 'owner', 'o1', 5)).map((row) => row.id)).toEqual(['t1']);
      await store.insert(tokens, { id: 't2', hash: 'h2', owner: 'o1', expires_at: 2 });
      expect(await store.findMany(tokens, 'owner', 'o1', 1)).toHaveLength(1); // the limit still holds
      const sources = [...get.mock.contexts, ...all.mock.contexts].map((statement) => (statement as { source: string }).source);
      expect(sources.filter((sql) => sql.startsWith('SELECT'))).toHaveLength(4);
      for (const sql of sources) expect(sql).not.toMatch(/LIMIT \?/);
    } finally {
      get.mockRestore();
      all.mockRestore();
      await store.close();
    }
  });

  describe('group commit', () => {
    const nextTurn = () => new Promise<void>((done) => setImmediate(done));
    /** Counts the COMMITs the store runs while `work` runs. */
    async function commitsDuring(work: () => Promise<unknown>): Promise<number> {
      const run = vi.spyOn(statementPrototype(), 'run');
      try {
        await work();
        return run.mock.contexts.filter((statement) => (statement as { source: string }).source === 'COMMIT').length;
      } finally {
        run.mockRestore();
      }
    }

    it('gathers transactions that arrive over several turns of the event loop into one COMMIT, as requests of many connections do', async () => {
      const { store } = await openMigrated();
      try {
        // A turn of the event loop can be preempted past the 2 ms the queue gathers on a loaded machine: one of three tries must show it.
        const commits: number[] = [];
        for (let attempt = 0; attempt < 3 && commits.at(-1) !== 1; attempt++) {
          commits.push(
            await commitsDuring(async () => {
              const done: Promise<void>[] = [];
              // Two at a time, as several requests come in with one poll of the sockets, over three turns.
              for (let turn = 0; turn < 3; turn++) {
                for (const i of [0, 1]) done.push(store.insert(tokens, { id: `try${attempt}-${turn}-${i}`, hash: null, owner: 'gathered', expires_at: null }));
                await nextTurn();
              }
              await Promise.all(done);
            }),
          );
        }
        expect(commits.at(-1)).toBe(1);
        expect(await store.findMany(tokens, 'owner', 'gathered')).toHaveLength(6 * commits.length);
      } finally {
        await store.close();
      }
    });

    it('stops gathering 2 ms after the first transaction, however long the flood goes on', async () => {
      const { store } = await openMigrated();
      try {
        let firstDone = false;
        const first = store.insert(tokens, { id: 'flood-first', hash: null, owner: 'flood', expires_at: null }).then(() => void (firstDone = true));
        const rest: Promise<void>[] = [];
        // New transactions every turn for 500 ms: without the bound the queue would keep gathering until they stop.
        const until = performance.now() + 500;
        for (let i = 0; performance.now() < until && !firstDone; i++) {
          rest.push(store.insert(tokens, { id: `flood-${i}`, hash: null, owner: 'flood', expires_at: null }));
          await nextTurn();
        }
        expect(firstDone).toBe(true);
        await Promise.all([first, ...rest]);
      } finally {
        await store.close();
      }
    });

    it('commits a transaction that comes alone after one turn, without waiting for others', async () => {
      const { store } = await openMigrated();
      try {
        let turns = 0;
        let committed = false;
        const write = store.insert(tokens, { id: 'alone', hash: null, owner: null, expires_at: null }).then(() => void (committed = true));
        while (!committed && turns < 50) {
          await nextTurn();
          turns += 1;
        }
        await write;
        expect(turns).toBeLessThanOrEqual(2);
      } finally {
        await store.close();
      }
    });
  });

  it('keeps the savepoints\' page copies in memory: a batch of transactions writes little more than its WAL frames (Linux /proc/self/io)', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const path = join(dir, 'journal.db');
    // Without the checkpoint worker, the WAL file grows by exactly the frames each commit writes.
    const store = createSqliteStore({ path, checkpointIntervalMs: 0 });
    await store.migrate([tokens]);
    const written = () => Number(/^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);
    const walBytes = () => statSync(`${path}-wal`).size;
    const random = () => randomBytes(16).toString('hex');
    // Each transaction touches more pages than SQLite's 64 KiB sub-journal keeps in memory by default.
    const transaction = () => store.transaction(async (tx) => {
      for (let i = 0; i < 40; i++) await tx.insert(tokens, { id: random(), hash: random(), owner: random(), expires_at: i });
    });
    await Promise.all(Array.from({ length: 10 }, transaction)); // warm-up: the tables have inner pages
    const [bytesBefore, walBefore] = [written(), walBytes()];
    await Promise.all(Array.from({ length: 20 }, transaction)); // one group commit
    const wal = walBytes() - walBefore;
    const bytes = written() - bytesBefore;
    expect(wal).toBeGreaterThan(200_000);
    // With the sub-journal in a temporary file, it was about twice the WAL's frames (each page copied there first).
    expect(bytes).toBeLessThan(wal * 1.25);
    await store.close();
  });

  describe('WAL checkpoints on a worker thread', () => {
    const filler = table<{ id: string; blob: string | null }>({ name: 'filler', key: 'id', columns: { id: 'text', blob: 'text' } });
    const fill = async (store: ReturnType<typeof createSqliteStore>) => {
      await store.migrate([filler]);
      for (let i = 0; i < 300; i++) await store.insert(filler, { id: `row${i}`, blob: 'x'.repeat(2000) });
    };
    const settle = () => new Promise((done) => setTimeout(done, 600));
    let dir: string;
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('copies committed pages into the database file while the store stays open', async () => {
      dir = tempDir();
      const path = join(dir, 'db.sqlite');
      const store = createSqliteStore({ path, checkpointIntervalMs: 50 });
      await fill(store);
      await settle();
      expect(statSync(path).size).toBeGreaterThan(500_000);
      await store.close();
    });

    it('without the worker (checkpointIntervalMs 0), those pages stay in the WAL', async () => {
      dir = tempDir();
      const path = join(dir, 'db.sqlite');
      const store = createSqliteStore({ path, checkpointIntervalMs: 0 });
      await fill(store);
      await settle();
      expect(statSync(path).size).toBeLessThan(100_000);
      expect(statSync(`${path}-wal`).size).toBeGreaterThan(500_000);
      await store.close();
    });
  });
});

describe('sqlite store: pages at 100,000 rows', () => {

  let dir: string;
  let path: string;
  let store: Store;
  beforeAll(async () => {
    dir = tempDir();
    path = join(dir, 'pages.db');
    store = createSqliteStore({ path });
    // The rows come first and the ordered indexes with a later migrate, as for a deployment upgrading.
    await store.migrate([before]);
    await store.transaction(async (tx) => {
      for (let i = 0; i < ROWS; i++) await tx.insert(before, signup(i));
    });
    await store.migrate([signups]);
  }, 60_000);
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });


  it('creates the ordered indexes on the populated table at the later migrate, rows without the equality column left out', () => {
    const peek = new Database(path, { readonly: true });
    try {
      const columnsOf = (index: string) => peek.prepare<[], { name: string }>(`PRAGMA index_info(${index})`).all().map((column) => column.name);
      expect(columnsOf('signups_created_at_ord')).toEqual(['created_at', 'id']);
      expect(columnsOf('signups_tenant_created_at_ord')).toEqual(['tenant', 'created_at', 'id']);
      const partial = peek.prepare<[], { name: string; partial: number }>('PRAGMA index_list(signups)').all().filter((index) => index.name.endsWith('_ord'));
      expect(Object.fromEntries(partial.map((index) => [index.name, index.partial]))).toEqual({ signups_created_at_ord: 0, signups_tenant_created_at_ord: 1 });
    } finally {
      peek.close();
    }
  });

  it('reads every page from its ordered index, with no sort (EXPLAIN QUERY PLAN of the statements the store runs)', async () => {
    const all = vi.spyOn(statementPrototype(), 'all');
    const peek = new Database(path, { readonly: true });
    try {
      for (const [name, query] of Object.entries(pages)) {
        all.mockClear();
        await store.page(signups, query);
        const source = (all.mock.contexts[0] as { source: string }).source;
        const plan = peek
          .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${source}`)
          .all(...all.mock.calls[0]!)
          .map((row) => row.detail)
          .join('\n');
        const index = query.where ? 'signups_tenant_created_at_ord' : 'signups_created_at_ord';
        expect(plan, name).toMatch(new RegExp(`^SEARCH signups USING INDEX ${index} \\(`));
        expect(plan, name).not.toMatch(/TEMP B-TREE|\bSCAN\b/);
        if (query.after) expect(plan, name).toContain('(created_at,id)<(?,?)');
      }
    } finally {
      all.mockRestore();
      peek.close();
    }
  });

  it('gives the right rows for a page near the end as for the first page (how long each takes: the EXPLAIN above, and npm run bench)', async () => {
    expect(ids(await store.page(signups, pages.first!))).toEqual(newest(ROWS - 1, 50));
    expect(ids(await store.page(signups, pages.deep!))).toEqual(newest(99, 50));
    expect(ids(await store.page(signups, pages['deep, by tenant, in a range']!))).toEqual(newest(1993, 50, 10));
  });
});
