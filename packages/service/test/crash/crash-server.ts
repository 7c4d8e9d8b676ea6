/**
 * A real @authmd/service process for the crash test (crash.test.ts), run as a child:
 *
 *   node --conditions=@authmd/source --import tsx crash-server.ts <sqlite-path> <port> [issuer]
 *
 * (or AUTHMD_CRASH_DB / AUTHMD_CRASH_PORT / AUTHMD_CRASH_ISSUER). Port 0 picks an ephemeral port.
 * The issuer defaults to http://127.0.0.1:<port>; it must stay the same across restarts, because
 * assertions carry `iss` (so either pass a fixed port or a fixed issuer).
 *
 * Serves the protocol paths through nodeMiddleware and `GET /api/notes` behind
 * protect({scopes:['notes.read']}); prints exactly one line `READY <url>` on stdout once listening.
 * It is meant to be SIGKILLed; SIGTERM/SIGINT close it cleanly.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createService, createSqliteStore, nodeMiddleware, silentLogger, writeRefusal } from '@authmd/service';

const dbPath = process.argv[2] ?? process.env.AUTHMD_CRASH_DB;
const portArg = process.argv[3] ?? process.env.AUTHMD_CRASH_PORT ?? '0';
const issuerArg = process.argv[4] ?? process.env.AUTHMD_CRASH_ISSUER;
const port = Number(portArg);
if (!dbPath || !Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write('usage: crash-server.ts <sqlite-path> <port> [issuer]\n');
  process.exit(2);
}

const server = createServer();
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => {
    server.off('error', reject);
    resolve();
  });
});
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const issuer = issuerArg ?? base;

const service = await createService({
  issuer,
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  store: createSqliteStore({ path: dbPath }),
  logger: silentLogger,
  maintenanceIntervalSeconds: 0,
  // The stream registers hundreds of times from 127.0.0.1; rate limits are not what this test is about.
  rateLimits: { anonymous: { perIp: 1_000_000, perService: 1_000_000 } },
  mail: { outbox: true },
});
const read = service.protect({ scopes: ['notes.read'] });
const middleware = nodeMiddleware(service);

server.on('request', (req, res) =>
  middleware(req, res, () => {
    const path = new URL(req.url ?? '/', base).pathname;
    if (path !== '/api/notes' || req.method !== 'GET') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"error":"not_found"}');
      return;
    }
    read.check(req.headers.authorization).then(
      (outcome) => {
        if (!outcome.ok) return writeRefusal(res, outcome.refusal);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        res.end(JSON.stringify({ principal: outcome.principal }));
      },
      (error: unknown) => {
        process.stderr.write(`guard failed: ${String(error)}\n`);
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end('{"error":"server_error"}');
      },
    );
  }),
);

const shutdown = () => {
  server.closeAllConnections();
  server.close(() => {
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);

process.stdout.write(`READY ${base}\n`);
