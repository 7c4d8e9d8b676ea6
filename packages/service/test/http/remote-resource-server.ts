/**
 * A resource server in its own process, protected by the remote guard (RFC 7662 introspection), for
 * remote-guard.test.ts:
 *
 *   node --conditions=@authmd/source --import tsx remote-resource-server.ts '<json config>'
 *
 * The config: `{ clientId, clientSecret, resource, introspectionUrl?, issuer?, guards: { <name>: { cacheMs, clientSecret?, invalidationDatabaseUrl? } } }`.
 * With `invalidationDatabaseUrl` (the service's PostgreSQL database) the guard listens for revocations there.
 * Each named guard gets `GET /<name>/notes` (notes.read), `POST /<name>/notes` (notes.write) and
 * `POST /<name>/forget` (the revocation-notification hook: forgets the token in the body, or every
 * cached answer when the body is empty). Listens on 127.0.0.1 (ephemeral port) and prints exactly one
 * line `READY <url>` once listening; SIGTERM/SIGINT close it.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteGuard, type RemoteGuard } from '@authmd/service/remote';
import { createPostgresStore } from '@authmd/service';

interface Config {
  clientId: string;
  clientSecret: string;
  resource: string;
  introspectionUrl?: string;
  issuer?: string;
  guards: Record<string, { cacheMs: number; clientSecret?: string; issuerOnly?: boolean; invalidationDatabaseUrl?: string }>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const guards = new Map<string, RemoteGuard>();
for (const [name, options] of Object.entries(config.guards)) {
  guards.set(
    name,
    createRemoteGuard({
      ...(options.issuerOnly ? { issuer: config.issuer } : { introspectionUrl: config.introspectionUrl, issuer: config.issuer }),
      clientId: config.clientId,
      clientSecret: options.clientSecret ?? config.clientSecret,
      resource: config.resource,
      scopes: ['notes.read'],
      cacheMs: options.cacheMs,
      ...(options.invalidationDatabaseUrl ? { invalidation: createPostgresStore({ connectionString: options.invalidationDatabaseUrl }) } : {}),
      timeoutMs: 2_000,
      onError: (error) => process.stderr.write(`introspection unavailable (${name}): ${error.message}\n`),
    }),
  );
}
const writers = new Map([...guards].map(([name, guard]) => [name, guard.protect({ scopes: ['notes.write'] })]));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  const [, name = '', action = ''] = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.split('/');
  const guard = guards.get(name);
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  if (!guard) return send(404, { error: 'not_found' });
  if (action === 'forget' && req.method === 'POST') {
    readBody(req).then((token) => {
      guard.forget(token || undefined);
      send(200, { forgotten: token ? 'one' : 'all' });
    });
    return;
  }
  if (action !== 'notes') return send(404, { error: 'not_found' });
  const routeGuard = req.method === 'POST' ? writers.get(name)! : guard;
  routeGuard.check(req.headers.authorization).then(
    (outcome) => {
      if (!outcome.ok) {
        res.writeHead(outcome.refusal.status, outcome.refusal.headers);
        return res.end(JSON.stringify(outcome.refusal.body));
      }
      send(200, { principal: outcome.principal });
    },
    (error: unknown) => {
      process.stderr.write(`guard failed: ${String(error)}\n`);
      send(500, { error: 'server_error' });
    },
  );
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`READY http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});

const shutdown = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
