import { createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { RedisClient } from 'redis';

/** The Redis the tests use (AUTHMD_TEST_REDIS_URL, default the local server); each test run keeps to its own prefix. */
export const REDIS_URL = process.env.AUTHMD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** One client class for every test client (`createClient` builds one per call, slowly). */
export const createPlainClient = RedisClient.factory({});

export function uniquePrefix(): string {
  return `authmd-test:${randomBytes(6).toString('hex')}:`;
}

/** The keys under `prefix` (a test looks into Redis, or cleans up after itself). */
export async function keysUnder(prefix: string): Promise<string[]> {
  return withClient(async (client) => {
    const keys: string[] = [];
    for await (const page of client.scanIterator({ MATCH: `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, COUNT: 1000 })) keys.push(...page);
    return keys;
  });
}

export async function dropPrefix(prefix: string): Promise<void> {
  const keys = await keysUnder(prefix);
  if (keys.length > 0) await withClient((client) => client.del(keys));
}

async function withClient<T>(f: (client: ReturnType<typeof createPlainClient>) => Promise<T>): Promise<T> {
  const client = createPlainClient({ url: REDIS_URL });
  await client.connect();
  try {
    return await f(client);
  } finally {
    client.destroy();
  }
}

/**
 * A TCP relay to Redis that holds everything Redis sends for `delayMs`: a replica whose deliveries
 * arrive late, to tell "the broadcaster waited for it" from "it happened to be fast".
 */
export async function slowRelay(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(REDIS_URL);
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = new Socket();
    outbound.connect(Number(target.port || 6379), target.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound);
    outbound.on('data', (chunk: Buffer) => setTimeout(() => inbound.destroyed || inbound.write(chunk), delayMs));
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => setTimeout(() => inbound.destroy(), delayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
