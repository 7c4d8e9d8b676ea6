import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { safeFetch, SafeFetchError } from '../../src/fetch/safe-fetch.ts';

/**
 * The connect-time check on its own: the vetted lookup is replaced by one that vets nothing and
 * answers 127.0.0.1 for every name (a rebinding resolver, or a code path that skipped the lookup
 * check). The socket check must still refuse, before a single byte reaches the server.
 */
vi.mock('../../src/fetch/vetting.ts', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/fetch/vetting.ts')>();
  return {
    ...original,
    vettedLookup: (): import('node:net').LookupFunction => (_hostname, options, callback) =>
      setImmediate(() => (options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4))),
  };
});

describe('the connect-time check, with the lookup check out of the way', () => {
  let server: Server;
  let port: number;
  let connections: number;
  let bytes: number;
  const sockets = new Set<Socket>();

  beforeEach(async () => {
    connections = 0;
    bytes = 0;
    server = createServer((socket) => {
      connections += 1;
      sockets.add(socket);
      socket.on('data', (chunk) => (bytes += chunk.length));
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it.each(['public.example', 'localhost'])('refuses %s once connected to loopback, having sent nothing', async (name) => {
    const error = await safeFetch(`https://${name}:${port}/jwks`, { timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafeFetchError);
    expect((error as SafeFetchError).code).toBe('blocked_address');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(connections).toBe(1);
    expect(bytes).toBe(0);
  });

  it('lets the same connection through when loopback is allowed (the check is what refused it)', async () => {
    const error = await safeFetch(`https://public.example:${port}/jwks`, { allowLoopback: true, timeoutMs: 300 }).catch((e: unknown) => e);
    // The TLS handshake starts (the server never answers it), so the fetch ends some other way.
    expect((error as SafeFetchError).code).not.toBe('blocked_address');
    expect(bytes).toBeGreaterThan(0);
  });
});
