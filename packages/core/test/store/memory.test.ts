import { describe, expect, it } from 'vitest';
import { table } from '../../src/store/contract.ts';
import { createMemoryStore } from '../../src/store/memory/memory-store.ts';
import { describeStoreContract } from '../../src/store/testing.ts';

describeStoreContract('memory', async () => ({ store: createMemoryStore() }));

describe('memory store', () => {
  const things = table<{ id: string; v: string | null }>({ name: 'things', key: 'id', columns: { id: 'text', v: 'text' } });

  it('fails, rather than hangs, when a transaction uses the store instead of its handle', async () => {
    const store = createMemoryStore({ lockTimeoutMs: 100 });
    await store.migrate([things]);
    await expect(store.transaction(async () => store.get(things, 'a'))).rejects.toThrow(/instead of the transaction handle/);
    expect(await store.get(things, 'a')).toBeUndefined();
  });

  it('refuses tables that were not migrated and invalid names', async () => {
    const store = createMemoryStore();
    await expect(store.get(things, 'a')).rejects.toThrow(/not been migrated/);
    await expect(store.migrate([{ ...things, name: 'Bad-Name' }])).rejects.toThrow(/invalid/);
  });
});
