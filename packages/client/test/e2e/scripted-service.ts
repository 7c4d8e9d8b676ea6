import { grantTypes } from '@authmd/protocol';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterTest } from '../../../../test-support/after-test.ts';

/**
 * A small real HTTP server on 127.0.0.1 for behaviour the demo does not produce on demand (a
 * `slow_down` sequence, a dishonest metadata document): each test answers requests itself and sees
 * every request that arrived. Closed after the test.
 */

export interface SeenRequest {
  method: string;
  path: string;
  /** JSON or form body, parsed. */
  body: Record<string, string>;
  authorization: string | undefined;
}

export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (request: SeenRequest, base: string) => Answer | undefined | Promise<Answer | undefined>;

export interface ScriptedService {
  base: string;
  seen: SeenRequest[];
}

async function readBody(request: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  if ((request.headers['content-type'] ?? '').includes('json')) return JSON.parse(text);
  return Object.fromEntries(new URLSearchParams(text));
}

export async function startScriptedService(handler: Handler): Promise<ScriptedService> {
  const seen: SeenRequest[] = [];
  let base = '';
  const server = createServer(async (req, res) => {
    try {
      const request: SeenRequest = { method: req.method ?? 'GET', path: new URL(req.url ?? '/', base).pathname, body: await readBody(req), authorization: req.headers.authorization };
      seen.push(request);
      const answer = (await handler(request, base)) ?? { status: 404, body: { error: 'not_found', message: `${request.method} ${request.path}` } };
      res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    } catch (error) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'internal_error', message: String(error) }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  afterTest(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { base, seen };
}

/** RFC 9728 protected resource metadata for `base` (or what `overrides` says instead). */
export function protectedResourceMetadata(base: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { resource: base, authorization_servers: [base], scopes_supported: ['notes.read', 'notes.write'], bearer_methods_supported: ['header'], ...overrides };
}

/**
 * RFC 8414 metadata of a service that speaks the v0.7 generation (the claim grant, the type-in
 * direction only: no `refresh` identity type), with its agent_auth block.
 */
export function authorizationServerMetadata(base: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    issuer: base,
    token_endpoint: `${base}/oauth2/token`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    grant_types_supported: [grantTypes.jwtBearer, grantTypes.claim],
    scopes_supported: ['notes.read', 'notes.write'],
    resource: base,
    authorization_servers: [base],
    agent_auth: {
      identity_endpoint: `${base}/agent/identity`,
      claim_endpoint: `${base}/agent/identity/claim`,
      identity_types_supported: ['anonymous', 'service_auth'],
    },
    ...overrides,
  };
}

/** Answers the two discovery documents; undefined for anything else. */
export function discoveryAnswer(request: SeenRequest, base: string): Answer | undefined {
  if (request.method !== 'GET') return undefined;
  if (request.path === '/.well-known/oauth-protected-resource') return { status: 200, body: protectedResourceMetadata(base) };
  if (request.path === '/.well-known/oauth-authorization-server') return { status: 200, body: authorizationServerMetadata(base) };
  return undefined;
}

/** A 200 to an anonymous registration, in the current dialect: an assertion for an hour, a claim token for a day. */
export function anonymousRegistration(base: string): Answer {
  return {
    status: 200,
    body: {
      id: 'reg_scripted',
      type: 'anonymous',
      identity: { assertion: 'eyJ.scripted.assertion', expires_at: new Date(Date.now() + 3_600_000).toISOString() },
      scopes: { pre_claim: ['notes.read'], post_claim: ['notes.read', 'notes.write'] },
      claim: { token: 'clm_scripted', expires_at: new Date(Date.now() + 86_400_000).toISOString(), url: `${base}/agent/identity/claim` },
    },
  };
}

/** A 401 from the API with the RFC 9728 challenge that points at the resource metadata. */
export function challenge(base: string, message = 'Missing Bearer credential.'): Answer {
  return {
    status: 401,
    body: { error: 'unauthorized', message },
    headers: { 'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource"` },
  };
}
