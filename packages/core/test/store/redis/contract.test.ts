import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withRedis } from '@authmd/core/redis';
import { describeStoreContract } from '@authmd/core/store/testing';
import { createMemoryStore } from '../../../src/store/memory/memory-store.ts';
import { createSqliteStore } from '../../../src/store/sqlite/sqlite-store.ts';
import { dropPrefix, REDIS_URL, uniquePrefix } from '../../../../../test-support/redis.ts';

describeStoreContract('memory with Redis', async () => {
  const prefix = uniquePrefix();
  return { store: withRedis(createMemoryStore(), { url: REDIS_URL, prefix }), cleanup: () => dropPrefix(prefix) };
});

describeStoreContract(
  'sqlite with Redis',
  async () => {
    const prefix = uniquePrefix();
    const dir = mkdtempSync(join(tmpdir(), 'authmd-redis-sqlite-'));
    const open = () => withRedis(createSqliteStore({ path: join(dir, 'store.db') }), { url: REDIS_URL, prefix });
    return {
      store: open(),
      reopen: async () => open(),
      cleanup: async () => {
        rmSync(dir, { recursive: true, force: true });
        await dropPrefix(prefix);
      },
    };
  },
  { persistent: true },
);
