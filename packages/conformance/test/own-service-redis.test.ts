import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDemo } from '../../../examples/demo/src/start.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { createTestDatabase } from '../../../test-support/postgres.ts';
import { dropPrefix, keysUnder, REDIS_URL, uniquePrefix } from '../../../test-support/redis.ts';
import { testProviderTrustEntry } from '../src/provider/test-provider.ts';
import { expectAllPassTwice } from './fixtures/check-own-demo.ts';

/**
 * The judge of our own service on its last backend (own-service.test.ts has the others): `authmd
 * check` against the demo on PostgreSQL with its rate-limit counters and cache invalidation in Redis
 * (AUTHMD_REDIS_URL), under a key prefix of its own. A file of its own, so that it runs beside the
 * other stores' runs instead of after them.
 */
describe('authmd check against the demo', () => {
  it('on PostgreSQL with Redis: passes every check, twice in a row (the second without --api)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'authmd-check-redis-'));
    const providerPort = await freePort();
    const database = await createTestDatabase();
    const prefix = uniquePrefix();
    const demo = await startDemo({
      port: 0,
      dataDir,
      databaseUrl: database.url,
      redisUrl: REDIS_URL,
      redisPrefix: prefix,
      trustProvider: testProviderTrustEntry(providerPort),
    });
    try {
      await expectAllPassTwice(demo.url, providerPort, join(dataDir, 'check-provider-key.json'), 'postgres + redis');
      // The registrations' rate-limit counters were kept in Redis, under this run's prefix.
      expect((await keysUnder(prefix)).some((key) => key.includes('rate:anonymous'))).toBe(true);
    } finally {
      await demo.close();
      await database.drop();
      await dropPrefix(prefix);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 240_000);
});
