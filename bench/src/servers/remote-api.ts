import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPostgresStore, createRemoteGuard, writeRefusal } from '@authmd/service';

/**
 * A resource server in its own process, protected by `createRemoteGuard` (introspection at
 * BENCH_REMOTE_ISSUER, client `bench-api` with BENCH_INTROSPECTION_SECRET) with a long cache
 * (60 s) and `invalidation` on the service's PostgreSQL database (BENCH_REMOTE_DATABASE_URL): a
 * revoked token it keeps serving after the service answered the revocation is the window.
 * `GET /api/notes` needs notes.read. Without BENCH_REMOTE_DATABASE_URL, no invalidation: the control
 * run, which shows that the measurement does see a window when there is one.
 */
const issuer = process.env.BENCH_REMOTE_ISSUER!;
const databaseUrl = process.env.BENCH_REMOTE_DATABASE_URL;
const invalidation = databaseUrl ? createPostgresStore({ connectionString: databaseUrl }) : undefined;
const guard = createRemoteGuard({
  issuer,
  introspectionUrl: `${issuer}/oauth2/introspect`,
  clientId: 'bench-api',
  clientSecret: process.env.BENCH_INTROSPECTION_SECRET!,
  resource: issuer,
  scopes: ['notes.read'],
  cacheMs: 60_000,
  ...(invalidation ? { invalidation } : {}),
  onError: (error) => process.stderr.write(`introspection unavailable: ${error.message}\n`),
});
const server = createServer((req, res) => {
  if (req.url !== '/api/notes') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    return res.end('{"error":"not_found"}');
  }
  guard.check(req.headers.authorization).then(
    (outcome) => {
      if (!outcome.ok) return writeRefusal(res, outcome.refusal);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"notes":[]}');
    },
    () => {
      res.writeHead(500);
      res.end();
    },
  );
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`));

process.on('SIGTERM', () => {
  guard.close();
  server.closeAllConnections();
  server.close(() => void (invalidation?.close() ?? Promise.resolve()).then(() => process.exit(0), () => process.exit(1)));
});
