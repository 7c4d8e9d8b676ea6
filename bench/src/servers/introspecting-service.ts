import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPostgresStore, createService, nodeMiddleware, silentLogger } from '@authmd/service';

/**
 * The service alone (no demo around it) on PostgreSQL with RFC 7662 introspection switched on, for
 * the remote guard's revocation window (replicas.ts): BENCH_SERVICE_DATABASE_URL, and
 * BENCH_INTROSPECTION_SECRET for the one introspection client, `bench-api`. The demo configures no
 * introspection, so the bench builds this one. Its issuer, and only resource, is its own address.
 */
const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const unlimited = { perIp: Number.MAX_SAFE_INTEGER, perService: Number.MAX_SAFE_INTEGER };
const service = await createService({
  issuer,
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  store: createPostgresStore({ connectionString: process.env.BENCH_SERVICE_DATABASE_URL! }),
  logger: silentLogger,
  rateLimits: { anonymous: unlimited, service_auth: unlimited },
  introspection: { clients: [{ id: 'bench-api', secret: process.env.BENCH_INTROSPECTION_SECRET! }] },
});
const middleware = nodeMiddleware(service);
server.on('request', (req, res) =>
  middleware(req, res, () => {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":"not_found"}');
  }),
);
process.stdout.write(`listening ${issuer}\n`);

process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void service.close().then(() => process.exit(0), () => process.exit(1)));
});
