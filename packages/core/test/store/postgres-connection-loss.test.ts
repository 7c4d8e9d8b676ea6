import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError, table } from '../../src/store/contract.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createTestDatabase, relay, type TestDatabase } from '../../../../test-support/postgres.ts';

/**
 * The connection of an open transaction lost between two of its statements (the database stopped,
 * a network cut). pg emits that as an 'error' event on the checked-out client, which no pool
 * listener hears: unheard, it was thrown as an uncaught exception and killed the whole process (seen
 * in examples/demo/test/replicas-faults.test.ts, both replicas dying when the database went away).
 */

type Item = { id: string; note: string | null };
const items = table<Item>({ name: 'loss_items', key: 'id', columns: { id: 'text', note: 'text' } });

let db: TestDatabase | undefined;
afterEach(async () => {
  await db?.drop();
  db = undefined;
});

describe('postgres store, connection lost inside a transaction', () => {
  it('fails that transaction as unavailable (no uncaught error), commits nothing of it, and serves again once the database is back', async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    let link = await relay(target);
    const url = new URL(db.url);
    url.host = `127.0.0.1:${link.port}`;
    const store = createPostgresStore({ connectionString: url.toString(), connectionTimeoutMs: 1000 });
    // What would have crashed a server process: recorded here so that this test itself fails.
    const uncaught: unknown[] = [];
    const record = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', record);
    try {
      await store.migrate([items]);
      let inside!: () => void;
      const entered = new Promise<void>((resolve) => (inside = resolve));
      let cut!: () => void;
      const wasCut = new Promise<void>((resolve) => (cut = resolve));
      const transaction = store.transaction(async (tx) => {
        await tx.insert(items, { id: 'first', note: null });
        inside();
        await wasCut;
        // Time for the closed socket to reach the client while no statement is running.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await tx.insert(items, { id: 'second', note: null });
      });
      await entered;
      await link.cut();
      cut();
      await expect(transaction).rejects.toBeInstanceOf(StoreUnavailableError);

      link = await relay(target, link.port); // the database is back on the same address
      await store.transaction(async (tx) => tx.insert(items, { id: 'third', note: null }));
      expect(await store.get(items, 'first')).toBeUndefined();
      expect(await store.get(items, 'third')).toEqual({ id: 'third', note: null });
      expect(uncaught.map(String)).toEqual([]);
    } finally {
      process.off('uncaughtException', record);
      await store.close().catch(() => {});
      await link.cut();
    }
  });
});
