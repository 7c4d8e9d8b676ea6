import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryStore, createService, nodeMiddleware, silentLogger, writeRefusal, type AuthmdService, type ServiceOptions } from '@authmd/service';

/**
 * A real auth.md service with its admin API on for `authmd admin`'s tests: memory store, on
 * 127.0.0.1 (an ephemeral port), with a protected `GET /api/notes` (notes.read) and a trusted agent
 * provider, "Acme Agents", whose JWKS this same server publishes at `<base>/acme/jwks.json`.
 */

export const OPERATOR = 'alice@ops.example';
export const OPERATOR_TOKEN = 'alice-operator-token-0123456789abcdefghijklmnop';

export interface AdminService {
  base: string;
  service: AuthmdService;
  /** The trusted provider's issuer and the kid of its one key. */
  provider: { issuer: string; kid: string };
  close(): Promise<void>;
}

export async function startAdminService(options: Partial<Omit<ServiceOptions, 'issuer'>> = {}): Promise<AdminService> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = { issuer: `${base}/acme`, kid: 'acme-key-1' };
  const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: provider.kid, alg: 'ES256', use: 'sig' };

  const service = await createService({
    issuer: base,
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createMemoryStore(),
    logger: silentLogger,
    maintenanceIntervalSeconds: 0,
    mail: { outbox: true },
    limits: { signInCodesPerIpPerHour: 1_000_000 },
    rateLimits: { anonymous: { perIp: 1_000, perService: 1_000_000 }, service_auth: { perIp: 1_000, perService: 1_000_000 } },
    trust: { issuers: [{ issuer: provider.issuer, displayName: 'Acme Agents', jwksUri: `${provider.issuer}/jwks.json` }], allowLoopback: true },
    admin: { apiTokens: [{ operator: OPERATOR, token: OPERATOR_TOKEN }] },
    ...options,
  });
  const notes = service.protect({ scopes: ['notes.read'] });
  const middleware = nodeMiddleware(service);
  server.on('request', (req, res) =>
    middleware(req, res, async () => {
      const path = new URL(req.url ?? '/', base).pathname;
      if (path === '/acme/jwks.json') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=300' });
        return res.end(JSON.stringify({ keys: [jwk] }));
      }
      if (path !== '/api/notes') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        return res.end('{"error":"not_found"}');
      }
      const outcome = await notes.check(req.headers.authorization);
      if (!outcome.ok) return writeRefusal(res, outcome.refusal);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"notes":[]}');
    }),
  );
  return {
    base,
    service,
    provider,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
}

type Json = Record<string, any>;

async function postJson(url: string, body: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** `POST /agent/identity` as an agent would: anonymous, or by email (service_auth). Must succeed. */
export async function register(base: string, body: { type: 'anonymous' } | { type: 'service_auth'; login_hint: string }): Promise<Json> {
  const answer = await postJson(`${base}/agent/identity`, body);
  if (answer.status !== 200) throw new Error(`registration failed: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** The status of `POST /agent/identity` for an anonymous agent (a 429 when the per-IP limit is spent). */
export async function registerAnonymousStatus(base: string): Promise<number> {
  return (await postJson(`${base}/agent/identity`, { type: 'anonymous' })).status;
}

/** An anonymous agent with an access token for the protected API. */
export async function agentWithToken(base: string): Promise<{ id: string; token: string }> {
  const registration = await register(base, { type: 'anonymous' });
  const response = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: registration.identity.assertion }).toString(),
  });
  if (response.status !== 200) throw new Error(`exchange failed: ${response.status} ${await response.text()}`);
  return { id: registration.id, token: (await response.json()).access_token };
}

/** The status of the protected API for this bearer token. */
export async function callNotes(base: string, token: string): Promise<number> {
  const response = await fetch(`${base}/api/notes`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}
