import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMemoryStore,
  createService,
  expressMiddleware,
  requireToken,
  silentLogger,
  type AuthmdService,
  type RequestWithPrincipal,
} from '@authmd/service';
import { JWT_BEARER, testClock } from '../support/harness.ts';
import { json, rawRequest } from './helpers.ts';

/** The service mounted in an Express 5 application. */

interface RunningApp {
  base: string;
  service: AuthmdService;
  close(): Promise<void>;
}

let app: RunningApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** Starts Express; `before` mounts middleware (body parsers) ahead of the service. */
async function startExpress(before: (app: Express) => void = () => {}): Promise<RunningApp> {
  const application = express();
  const server = await new Promise<Server>((resolve) => {
    const listening = application.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const service = await createService({
    issuer: base,
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createMemoryStore(),
    logger: silentLogger,
    clock: testClock(),
    maintenanceIntervalSeconds: 0,
  });
  before(application);
  application.use(expressMiddleware(service));
  application.get('/api/notes', requireToken(service.protect({ scopes: ['notes.read'] })), (req, res) => {
    res.json({ principal: (req as RequestWithPrincipal).authmd });
  });
  app = {
    base,
    service,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    },
  };
  return app;
}

/**
 * Requests that give up after 3 s, so that a request the app never answers fails the test quickly
 * and says so, instead of running into the test timeout.
 */
const TIMEOUT_MS = 3000;
function send(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) }).catch((error: Error) => {
    throw new Error(`${init.method ?? 'GET'} ${url}: no answer within ${TIMEOUT_MS} ms (${error.name})`);
  });
}
const postJson = (url: string, body: unknown) =>
  send(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const postForm = (url: string, body: Record<string, string> | string) =>
  send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
const exchange = (base: string, assertion: string) => postForm(`${base}/oauth2/token`, { grant_type: JWT_BEARER, assertion });
const callApi = (base: string, token?: string) => send(`${base}/api/notes`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** anonymous → exchange → API → revoke → 401, through whatever the app has mounted. */
async function runCoreFlow(base: string): Promise<void> {
  const registered = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
  expect(registered.status).toBe(200);
  const registration = await json(registered);

  const exchanged = await exchange(base, registration.identity.assertion);
  expect(exchanged.status).toBe(200);
  const { access_token } = await json(exchanged);

  const call = await callApi(base, access_token);
  expect(call.status).toBe(200);
  expect((await call.json()).principal.registrationId).toBe(registration.id);

  expect((await postForm(`${base}/oauth2/revoke`, { token: access_token })).status).toBe(200);
  const refused = await callApi(base, access_token);
  expect(refused.status).toBe(401);
  expect(refused.headers.get('www-authenticate')).toContain('error="invalid_token"');
}

describe('express: the service mounted with expressMiddleware', () => {
  it('runs the anonymous → exchange → API → revoke → 401 flow', async () => {
    const { base } = await startExpress();
    await runCoreFlow(base);
  });

  it('answers a call without a token with the resource_metadata challenge', async () => {
    const { base } = await startExpress();
    const response = await callApi(base);
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${base}/.well-known/oauth-protected-resource"`);
  });

  it('serves discovery and auth.md', async () => {
    const { base } = await startExpress();
    expect((await json(await fetch(`${base}/.well-known/oauth-authorization-server`))).issuer).toBe(base);
    expect((await fetch(`${base}/auth.md`)).headers.get('content-type')).toBe('text/markdown; charset=utf-8');
  });

  it("lets unknown paths fall through to Express's own 404", async () => {
    const { base } = await startExpress();
    const response = await fetch(`${base}/nothing-here`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('Cannot GET /nothing-here');
  });

  it('answers 413 JSON to an oversized body', async () => {
    const { base } = await startExpress();
    const response = await postJson(`${base}/agent/identity`, JSON.stringify({ type: 'anonymous', pad: 'x'.repeat(70_000) }));
    expect(response.status).toBe(413);
    expect((await json(response)).error).toBe('payload_too_large');
  });

  it('answers TRACE on a service path with 405 JSON, not an Express 500 error page', async () => {
    const { base } = await startExpress();
    const response = await rawRequest(base, { method: 'TRACE', path: '/oauth2/token' });
    expect(String(response.headers['content-type'])).toMatch(/^application\/json/);
    expect(response.status).toBe(405);
  });
});

describe('express: body parsers mounted before the service (re-serialisation)', () => {
  const withParsers = (application: Express) => {
    application.use(express.json());
    application.use(express.urlencoded({ extended: false }));
  };

  it('runs the same flow with express.json() and express.urlencoded() in front', async () => {
    const { base } = await startExpress(withParsers);
    await runCoreFlow(base);
  });

  it('still refuses a repeated form parameter', async () => {
    const { base } = await startExpress(withParsers);
    const registration = await json(await postJson(`${base}/agent/identity`, { type: 'anonymous' }));
    const body = new URLSearchParams([
      ['grant_type', JWT_BEARER],
      ['assertion', registration.identity.assertion],
      ['assertion', registration.identity.assertion],
    ]).toString();
    const response = await postForm(`${base}/oauth2/token`, body);
    expect(response.status).toBe(400);
    expect((await json(response)).error).toBe('invalid_request');
  });

  it('still refuses a JSON body at the token endpoint', async () => {
    const { base } = await startExpress(withParsers);
    const response = await postJson(`${base}/oauth2/token`, { grant_type: JWT_BEARER, assertion: 'a.b.c' });
    expect(response.status).toBe(400);
    expect((await json(response)).error_description).toContain('Content-Type');
  });

  it('still validates the registration body', async () => {
    const { base } = await startExpress(withParsers);
    const response = await postJson(`${base}/agent/identity`, { type: 'wizard' });
    expect(response.status).toBe(400);
    expect((await json(response)).error).toBe('invalid_request');
  });

  it.each([
    ['malformed JSON', 'application/json', '{"type":', 400, 'invalid_request', /not valid UTF-8 JSON/],
    ['a body past the parser\'s 100 kB', 'application/json', JSON.stringify({ type: 'anonymous', pad: 'x'.repeat(200_000) }), 413, 'payload_too_large', /exceeds 65536 bytes/],
    ['a charset the parser refuses', 'application/json; charset=koi8-r', '{"type":"anonymous"}', 400, 'invalid_request', /the charset koi8-r is not supported; send UTF-8/],
    ['5,000 levels of nesting', 'application/json', `${'['.repeat(5000)}${']'.repeat(5000)}`, 400, 'invalid_request', /nested too deeply/],
  ])('answers %s refused by the parser with the protocol JSON error, not an HTML page', async (_what, type, body, status, error, description) => {
    const { base } = await startExpress(withParsers);
    const response = await send(`${base}/agent/identity`, { method: 'POST', headers: { 'content-type': type }, body });
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const answer = await json(response);
    expect(answer.error).toBe(error);
    expect(answer.error_description).toMatch(description);
  });

  it("leaves another middleware's error on a service path to the app", async () => {
    const { base } = await startExpress((application) =>
      application.use((_req, _res, next) => next(Object.assign(new Error('app says no'), { type: 'app.refused', status: 403 }))),
    );
    const response = await send(`${base}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain('app says no');
  });

  it("leaves a parser's refusal on the app's own paths to the app", async () => {
    const { base } = await startExpress(withParsers);
    const response = await send(`${base}/api/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":' });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('runs the flow with express.raw() in front (the body arrives as a Buffer)', async () => {
    const { base } = await startExpress((application) => application.use(express.raw({ type: '*/*' })));
    await runCoreFlow(base);
  });

  it('runs the flow with express.text() in front (the body arrives as a string)', async () => {
    const { base } = await startExpress((application) => application.use(express.text({ type: '*/*' })));
    await runCoreFlow(base);
  });
});
