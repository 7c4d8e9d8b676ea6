import { createServer } from 'node:net';

/**
 * A port on 127.0.0.1 that was free a moment ago: for a server that must be known before it starts
 * (a provider the service must already trust) or come back on the same port, and for "nothing listens".
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
