import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoProvider, type RunningDemoProvider } from '../src/provider/index.ts';
import { startDemo } from '../src/start.ts';

/** The demo provider over real HTTP: the sample provider's JSON API, its documents, and the page. */

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-demo-provider-'));
  dirs.push(dir);
  return dir;
};

interface Receiver {
  url: string;
  received: string[];
  close(): Promise<void>;
}

/** A stand-in auth.md service: RFC 8414 metadata with an events endpoint, and an RFC 8935 receiver. */
async function startReceiver(): Promise<Receiver> {
  const received: string[] = [];
  let base = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body?: unknown) => {
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') {
      return send(200, { issuer: base, agent_auth: { events_endpoint: `${base}/agent/event/notify` } });
    }
    if (req.method === 'POST' && req.url === '/agent/event/notify') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(Buffer.concat(chunks).toString());
        send(202);
      });
      return;
    }
    send(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    received,
    close: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
}

let service: Receiver;
let demo: RunningDemoProvider;

beforeAll(async () => {
  service = await startReceiver();
  demo = await startDemoProvider({ port: 0, dataDir: tempDir(), serviceUrl: service.url, deliverInBackground: false });
});
afterAll(async () => {
  await demo.close();
  await service.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function call(path: string, init: { method?: string; token?: string; body?: unknown } = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  return fetch(`${demo.url}${path}`, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
}

async function login(email: string): Promise<{ token: string; user: Record<string, unknown> }> {
  const response = await call('/login', { body: { email } });
  expect(response.status).toBe(200);
  const body = await response.json();
  return { token: body.session_token, user: body.user };
}

describe('the demo provider: sample-compatible JSON API', () => {
  it('signs seeded users in by email and refuses others', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { token, user } = await login('Ada@Example.com');
    expect(token).toMatch(/^pst_[A-Za-z0-9_-]{32}$/);
    expect(user).toEqual({ id: 'usr_ada', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', auth_time: expect.any(Number) });
    expect(user.auth_time).toBeGreaterThanOrEqual(before);

    const unknown = await call('/login', { body: { email: 'mallory@example.com' } });
    expect(unknown.status).toBe(401);
    expect((await unknown.json()).error).toBe('unknown_user');
    const malformed = await call('/login', { body: { mail: 'ada@example.com' } });
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error).toBe('invalid_request');
    const notJson = await fetch(`${demo.url}/login`, { method: 'POST', body: 'email=ada@example.com', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(notJson.status).toBe(400);
  });

  it('answers 401 unauthorized without a valid session', async () => {
    for (const path of ['/grants', '/id-jag']) {
      const missing = await call(path, { body: { audience: service.url } });
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ error: 'unauthorized', message: 'Missing Bearer session token.' });
      const invalid = await call(path, { body: { audience: service.url }, token: 'pst_nope' });
      expect(invalid.status).toBe(401);
      expect(await invalid.json()).toMatchObject({ error: 'unauthorized', message: 'Invalid or expired session.' });
    }
    expect((await call('/grants')).status).toBe(401);
    expect((await call('/grants/grant_x', { method: 'DELETE' })).status).toBe(401);
  });

  it('grants, mints, consumes a once grant, lists and revokes, as the sample did', async () => {
    const { token, user } = await login('grace@example.com');
    const denied = await call('/id-jag', { token, body: { audience: service.url } });
    expect(denied.status).toBe(403);
    expect((await denied.json()).error).toBe('consent_required');

    const created = await call('/grants', { token, body: { audience: service.url, mode: 'once' } });
    expect(created.status).toBe(201);
    const grant = await created.json();
    expect(grant).toEqual({
      id: expect.stringMatching(/^grant_[0-9a-f-]{36}$/),
      user_id: 'usr_grace',
      audience: service.url,
      mode: 'once',
      created_at: expect.any(String),
      expires_at: expect.any(String),
      events_uri: `${service.url}/agent/event/notify`,
      status: 'active',
    });
    expect(Date.parse(grant.expires_at) - Date.parse(grant.created_at)).toBe(86_400_000);

    const minted = await call('/id-jag', { token, body: { audience: service.url, resource: `${service.url}/api`, agent_platform: 'vitest', agent_context_id: 'ctx_1' } });
    expect(minted.status).toBe(200);
    const body = await minted.json();
    expect(body).toEqual({ assertion_type: 'urn:ietf:params:oauth:token-type:id-jag', assertion: expect.any(String), expires_in: 300 });
    const { payload } = await jwtVerify(body.assertion, createRemoteJWKSet(new URL(`${demo.url}/.well-known/jwks.json`)), {
      typ: 'oauth-id-jag+jwt',
      algorithms: ['ES256'],
      issuer: demo.url,
      audience: service.url,
    });
    expect(payload).toMatchObject({
      sub: 'usr_grace',
      client_id: `${demo.url}/agent-auth.json`,
      auth_time: user.auth_time,
      email: 'grace@example.com',
      email_verified: true,
      phone_number: '+15555550123',
      phone_number_verified: true,
      resource: `${service.url}/api`,
      agent_platform: 'vitest',
      agent_context_id: 'ctx_1',
    });

    const again = await call('/id-jag', { token, body: { audience: service.url } });
    expect(again.status).toBe(403);
    expect((await again.json()).error).toBe('consent_required');

    const listed = await (await call('/grants', { token })).json();
    expect(listed.grants).toEqual([{ ...grant, consumed_at: expect.any(String), status: 'consumed' }]);

    const deleted = await call(`/grants/${grant.id}`, { token, method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(deleted.headers.get('revocation-status')).toBe('delivered');
    const gone = await call(`/grants/${grant.id}`, { token, method: 'DELETE' });
    expect(gone.status).toBe(404);
    expect((await gone.json()).error).toBe('not_found');

    // Delivered before the answer (no background delivery runs in this suite).
    const revocations = (await (await call('/revocations', { token })).json()).revocations;
    expect(revocations).toEqual([expect.objectContaining({ grant_id: grant.id, audience: service.url, status: 'delivered', attempts: 1, last_status: 202 })]);
    const set = service.received.find((t) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).jti === revocations[0].jti);
    expect(set).toBeDefined();
  });

  it('upserts per audience, refuses bad input, other users’ grants and unverified users', async () => {
    const ada = await login('ada@example.com');
    const first = await (await call('/grants', { token: ada.token, body: { audience: service.url, mode: 'once' } })).json();
    const second = await (await call('/grants', { token: ada.token, body: { audience: `${service.url}/`, mode: 'always' } })).json();
    expect(second.id).toBe(first.id);
    expect(second.mode).toBe('always');

    const badMode = await call('/grants', { token: ada.token, body: { audience: service.url, mode: 'forever' } });
    expect(badMode.status).toBe(400);
    const notAService = await call('/grants', { token: ada.token, body: { audience: `${demo.url}/nothing`, mode: 'always' } });
    expect(notAService.status).toBe(400);
    expect((await notAService.json()).error).toBe('invalid_audience');
    const metadataHost = await call('/grants', { token: ada.token, body: { audience: 'https://169.254.169.254', mode: 'always' } });
    expect(metadataHost.status).toBe(400);

    const grace = await login('grace@example.com');
    expect((await call(`/grants/${first.id}`, { token: grace.token, method: 'DELETE' })).status).toBe(404);

    const eve = await login('eve@example.com');
    expect((await call('/grants', { token: eve.token, body: { audience: service.url, mode: 'always' } })).status).toBe(201);
    const refused = await call('/id-jag', { token: eve.token, body: { audience: service.url } });
    expect(refused.status).toBe(403);
    expect((await refused.json()).error).toBe('missing_verified_email');
  });

  it('answers a malformed percent-encoding in any path with 400 invalid_request JSON, never a 500', async () => {
    const { token } = await login('ada@example.com');
    const grant = await (await call('/grants', { token, body: { audience: service.url, mode: 'always' } })).json();
    const cases: Array<[method: string, path: string, session?: string]> = [
      ['DELETE', '/grants/%zz', token],
      ['DELETE', '/grants/%', token],
      ['DELETE', '/grants/%C3%28', token], // well-formed escapes, but not UTF-8
      ['DELETE', `/grants/${grant.id}%E0%A4%A`, token],
      ['DELETE', '/grants/%zz'],
      ['GET', '/grants%zz', token],
      ['POST', '/id-jag/%zz', token],
      ['POST', '/login%', undefined],
      ['GET', '/revocations/%ZZ', token],
      ['GET', '/.well-known/jwks.json%zz'],
      ['GET', '/agent-auth.json/%FF'],
      ['GET', '/%zz'],
      ['POST', '/ui/sign-in/%zz'],
      ['POST', '/ui/revoke%'],
    ];
    for (const [method, path, session] of cases) {
      const response = await fetch(`${demo.url}${path}`, { method, headers: session ? { authorization: `Bearer ${session}` } : {} });
      expect(response.status, `${method} ${path}`).toBe(400);
      expect(response.headers.get('content-type'), `${method} ${path}`).toBe('application/json');
      expect(await response.json(), `${method} ${path}`).toEqual({
        error: 'invalid_request',
        error_description: 'The request path has a malformed percent-encoding.',
        message: 'The request path has a malformed percent-encoding.',
      });
    }
    // The grant is untouched; a well-formed encoding of its id still reaches it.
    expect((await demo.provider.grants.get('usr_ada', grant.id))?.status).toBe('active');
    const escaped = grant.id.replace(/-/g, '%2D');
    const deleted = await call(`/grants/${escaped}`, { token, method: 'DELETE' });
    expect(deleted.status).toBe(204);
    expect(await demo.provider.grants.get('usr_ada', grant.id)).toBeUndefined();
  });

  it('serves the provider documents', async () => {
    const jwks = await fetch(`${demo.url}/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
    expect((await jwks.json()).keys).toHaveLength(1);
    const cimd = await (await fetch(`${demo.url}/agent-auth.json`)).json();
    expect(cimd).toMatchObject({ client_id: `${demo.url}/agent-auth.json`, client_name: 'authmd demo provider', jwks_uri: `${demo.url}/.well-known/jwks.json`, token_endpoint_auth_method: 'private_key_jwt' });
    expect(demo.trustEntry).toEqual({ issuer: demo.url, displayName: 'authmd demo provider', clientIds: [`${demo.url}/agent-auth.json`], jwksUri: `${demo.url}/.well-known/jwks.json` });
    expect((await fetch(`${demo.url}/nowhere`)).status).toBe(404);
  });
});

/** A tiny cookie jar: enough for one browser session against one origin. */
class Browser {
  private readonly cookies = new Map<string, string>();

  async get(path: string): Promise<{ response: Response; html: string }> {
    const response = await fetch(`${demo.url}${path}`, { headers: this.headers(), redirect: 'manual' });
    this.keep(response);
    return { response, html: await response.text() };
  }

  /** `extra` headers replace the defaults; a null one is not sent. */
  async post(path: string, form: Record<string, string>, extra: Record<string, string | null> = {}): Promise<Response> {
    const merged: Record<string, string | null> = { ...this.headers(), 'content-type': 'application/x-www-form-urlencoded', origin: demo.url, ...extra };
    const headers = Object.fromEntries(Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== null));
    const response = await fetch(`${demo.url}${path}`, {
      method: 'POST',
      headers,
      body: new URLSearchParams(form).toString(),
      redirect: 'manual',
    });
    this.keep(response);
    return response;
  }

  private headers(): Record<string, string> {
    return this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
  }

  private keep(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      expect(line).toMatch(/; HttpOnly; SameSite=Lax$/);
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)![1]!;

describe('the demo provider: the page', () => {
  it('signs in, grants consent to the demo service, revokes it, and delivers the SET', async () => {
    const browser = new Browser();
    let { response, html } = await browser.get('/');
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('script-src');
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('This is a demo identity provider.');
    expect(html).toContain('ada@example.com');

    // Forms without the CSRF token, or from another origin, are refused.
    expect((await browser.post('/ui/sign-in', { email: 'ada@example.com' })).status).toBe(403);
    expect((await browser.post('/ui/sign-in', { email: 'ada@example.com', csrf: csrfOf(html) }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await browser.post('/ui/sign-in', { email: 'nobody@example.com', csrf: csrfOf(html) })).status).toBe(401);

    const signedIn = await browser.post('/ui/sign-in', { email: 'ada@example.com', csrf: csrfOf(html) });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/?done=signed-in');
    ({ html } = await browser.get('/?done=signed-in'));
    expect(html).toContain('Signed in as <strong>Ada Lovelace</strong>');
    expect(html).toContain(`Allow agents at ${service.url}`);

    const granted = await browser.post('/ui/grants', { mode: 'always', csrf: csrfOf(html) });
    expect(granted.status).toBe(303);
    ({ html } = await browser.get('/?done=granted'));
    expect(html).toContain('Consent recorded');
    const grants = await demo.provider.grants.list('usr_ada');
    const grant = grants.find((g) => g.audience === service.url)!;
    expect(grant).toMatchObject({ mode: 'always', status: 'active' });
    expect(html).toContain(`<code>${service.url}</code></td><td>always</td><td>active</td><td>${new Date(grant.expiresAt).toISOString()}</td>`);
    expect(html).toContain(`name="grant_id" value="${grant.id}"`);

    const before = (await demo.provider.outbox.list({ userId: 'usr_ada' })).length;
    const revoked = await browser.post('/ui/revoke', { grant_id: grant.id, csrf: csrfOf(html) });
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get('location')).toBe('/?done=revoked');
    ({ html } = await browser.get('/?done=revoked'));
    expect(html).toContain('The service has been told: it accepted the revocation notice');
    expect(await demo.provider.grants.get('usr_ada', grant.id)).toBeUndefined();

    const queued = (await demo.provider.outbox.list({ userId: 'usr_ada' })).filter((e) => e.grantId === grant.id);
    expect(queued).toEqual([expect.objectContaining({ status: 'delivered', audience: service.url, endpoint: `${service.url}/agent/event/notify` })]);
    expect((await demo.provider.outbox.list({ userId: 'usr_ada' })).length).toBe(before + 1);
    expect(html).toContain(`data-jti="${queued[0]!.jti}"`);

    const signedOut = await browser.post('/ui/sign-out', { csrf: csrfOf(html) });
    expect(signedOut.status).toBe(303);
    ({ html } = await browser.get('/'));
    expect(html).toContain('Sign in');
    expect(html).not.toContain('Signed in as');
  });

  it('takes its own forms from a browser that sends Origin: null (the page is no-referrer), and still refuses cross-site posts', async () => {
    const browser = new Browser();
    const { response, html } = await browser.get('/');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    const csrf = csrfOf(html);
    const email = 'grace@example.com';
    // What Chromium sends with a form posted from this page: the no-referrer policy makes the Origin "null".
    const fromThisPage = { origin: 'null', 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
    // Cross-site: a foreign origin (even with a token), an opaque origin on another site (a sandboxed
    // frame, a data: URL), a sibling port of 127.0.0.1 (same site, other origin), no token, someone else's token.
    const stranger = new Browser();
    const strangersToken = csrfOf((await stranger.get('/')).html);
    const refused: Array<[string, Record<string, string>, Record<string, string | null>]> = [
      ['foreign Origin', { email, csrf }, { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }],
      ['foreign Origin, no fetch metadata', { email, csrf }, { origin: 'https://evil.example' }],
      ['opaque Origin from another site', { email, csrf }, { origin: 'null', 'sec-fetch-site': 'cross-site' }],
      ['another origin of the same site', { email, csrf }, { origin: 'null', 'sec-fetch-site': 'same-site' }],
      ['no token', { email }, fromThisPage],
      ['an empty token', { email, csrf: '' }, fromThisPage],
      ['another browser’s token', { email, csrf: strangersToken }, fromThisPage],
    ];
    for (const [what, form, headers] of refused) {
      const answer = await browser.post('/ui/sign-in', form, headers);
      expect(answer.status, what).toBe(403);
      expect(await answer.text(), what).toContain('This form has expired or did not come from this page.');
    }
    expect((await browser.get('/')).html, 'no refused post signed anyone in').not.toContain('Signed in as');

    const signedIn = await browser.post('/ui/sign-in', { email, csrf }, fromThisPage);
    expect(signedIn.status).toBe(303);
    const signedInHtml = (await browser.get('/?done=signed-in')).html;
    expect(signedInHtml).toContain('Signed in as <strong>Grace Hopper</strong>');
    // No Origin at all (older browsers, some privacy tools) with the token is this page too.
    const signedOut = await browser.post('/ui/sign-out', { csrf: csrfOf(signedInHtml) }, { ...fromThisPage, origin: null });
    expect(signedOut.status).toBe(303);
  });

  it('refuses page actions without a session', async () => {
    const browser = new Browser();
    const { html } = await browser.get('/');
    expect((await browser.post('/ui/grants', { mode: 'always', csrf: csrfOf(html) })).status).toBe(401);
    expect((await browser.post('/ui/revoke', { grant_id: 'grant_x', csrf: csrfOf(html) })).status).toBe(401);
  });
});

describe('the demo provider next to the demo service', () => {
  it('resolves the demo service as the audience and mints for its issuer', async () => {
    const dataDir = tempDir();
    const notes = await startDemo({ port: 0, dataDir });
    const provider = await startDemoProvider({ port: 0, dataDir, serviceUrl: notes.url, deliverInBackground: false });
    try {
      const loggedIn = await fetch(`${provider.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com' }) });
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${(await loggedIn.json()).session_token}` };
      const grant = await fetch(`${provider.url}/grants`, { method: 'POST', headers, body: JSON.stringify({ audience: notes.url, mode: 'always' }) });
      expect(grant.status).toBe(201);
      expect((await grant.json()).audience).toBe(notes.url);
      const minted = await (await fetch(`${provider.url}/id-jag`, { method: 'POST', headers, body: JSON.stringify({ audience: `${notes.url}/` }) })).json();
      expect(JSON.parse(Buffer.from(minted.assertion.split('.')[1], 'base64url').toString()).aud).toBe(notes.url);
    } finally {
      await provider.close();
      await notes.close();
    }
  });
});
