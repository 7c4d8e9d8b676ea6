import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryStore, createService, nodeMiddleware, silentLogger, writeRefusal } from '@authmd/service';
import type { TrustEntry } from '../../src/provider/types.ts';

export interface RunningService {
  base: string;
  close(): Promise<void>;
}

const UNLIMITED = { perIp: 1_000_000, perService: 1_000_000 };

/**
 * The real `@authmd/service` (memory store) on 127.0.0.1, trusting the given providers, with one
 * protected API: `GET /api/notes` needs notes.read. It runs on the real clock, as providers do.
 */
export async function startService(issuers: TrustEntry[]): Promise<RunningService> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const service = await createService({
    issuer: base,
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createMemoryStore(),
    logger: silentLogger,
    maintenanceIntervalSeconds: 0,
    rateLimits: { identity_assertion: UNLIMITED },
    trust: { allowLoopback: true, issuers },
  });
  const read = service.protect({ scopes: ['notes.read'] });
  const middleware = nodeMiddleware(service);
  server.on('request', (req, res) =>
    middleware(req, res, async () => {
      if (new URL(req.url ?? '/', base).pathname !== '/api/notes') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        return res.end('{"error":"not_found"}');
      }
      const outcome = await read.check(req.headers.authorization);
      if (!outcome.ok) return writeRefusal(res, outcome.refusal);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ principal: outcome.principal }));
    }),
  );
  return {
    base,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
}
