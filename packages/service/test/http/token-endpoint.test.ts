import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callApi, exchange, JWT_BEARER, postForm, postJson, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { expectError, expectNoStore, json, parseChallenge } from './helpers.ts';

let running: RunningService;
let base: string;
let assertion: string;
beforeAll(async () => {
  running = await startService({ extraResources: ['/admin'] });
  base = running.base;
  assertion = (await registerAnonymous(base)).identity.assertion;
});
afterAll(() => running.close());

const token = (body: Record<string, string> | string, headers: Record<string, string> = {}) => postForm(`${base}/oauth2/token`, body, headers);
const form = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

async function expectInvalidRequest(response: Response, naming?: string): Promise<void> {
  const body = await expectError(response, 400, 'invalid_request');
  expectNoStore(response);
  if (naming) expect(body.error_description).toContain(naming);
}

describe('token endpoint request rules (RFC 6749 §3.2, §5.2)', () => {
  it('refuses a request without grant_type with invalid_request', async () => {
    await expectInvalidRequest(await token({ assertion }), 'grant_type');
  });

  it('treats an empty grant_type as missing', async () => {
    await expectInvalidRequest(await token({ grant_type: '', assertion }), 'grant_type');
  });

  it('refuses an unknown grant_type with unsupported_grant_type', async () => {
    for (const grantType of ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code', '__proto__', 'constructor']) {
      const response = await token({ grant_type: grantType, assertion });
      await expectError(response, 400, 'unsupported_grant_type');
      expectNoStore(response);
    }
  });

  it('refuses a jwt-bearer request without assertion, naming assertion', async () => {
    await expectInvalidRequest(await token({ grant_type: JWT_BEARER }), 'assertion');
  });

  it.each(['grant_type', 'assertion', 'resource'])('refuses %s sent twice', async (name) => {
    const pairs: [string, string][] = [
      ['grant_type', JWT_BEARER],
      ['assertion', assertion],
      ['resource', base],
    ];
    const value = pairs.find(([key]) => key === name)![1];
    await expectInvalidRequest(await token(form([...pairs, [name, value]])), name);
  });

  it('refuses a JSON body, naming Content-Type', async () => {
    await expectInvalidRequest(await postJson(`${base}/oauth2/token`, { grant_type: JWT_BEARER, assertion }), 'Content-Type');
  });

  it('refuses an Authorization header together with client_assertion', async () => {
    const response = await token(
      {
        grant_type: JWT_BEARER,
        assertion,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: 'a.b.c',
      },
      { authorization: `Basic ${Buffer.from('client:secret').toString('base64')}` },
    );
    await expectInvalidRequest(response);
  });

  it('keeps error_description to the RFC 6749 §5.2 character set even when it echoes the request', async () => {
    const responses = [
      await token({ grant_type: 'gr\u00e4nt "quoted" \\ back\nslash', assertion }),
      await exchange(base, assertion, { resource: 'https://x.example/\u00e9"\\' }),
    ];
    for (const response of responses) {
      const body = await json(response);
      expect(response.status).toBe(400);
      expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5B\x5D-\x7E]+$/);
    }
  });

  it('sends no-store and Pragma: no-cache on success', async () => {
    const response = await exchange(base, assertion);
    expect(response.status).toBe(200);
    expectNoStore(response);
  });

  it('answers GET with 405 and Allow: POST', async () => {
    const response = await fetch(`${base}/oauth2/token`);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST');
  });
});

describe('resource indicators (RFC 8707)', () => {
  it('binds a token requested for /admin to /admin and refuses it at /api/notes', async () => {
    const response = await exchange(base, assertion, { resource: `${base}/admin` });
    expect(response.status).toBe(200);
    const { access_token } = await json(response);
    expect((await callApi(base, access_token, {}, '/admin/ping')).status).toBe(200);
    const refused = await callApi(base, access_token);
    expect(refused.status).toBe(401);
    expect(parseChallenge(refused.headers.get('www-authenticate')).params.error).toBe('invalid_token');
  });

  it('binds a token requested without resource to the default resource only', async () => {
    const { access_token } = await json(await exchange(base, assertion));
    expect((await callApi(base, access_token)).status).toBe(200);
    const refused = await callApi(base, access_token, {}, '/admin/ping');
    expect(refused.status).toBe(401);
    expect(parseChallenge(refused.headers.get('www-authenticate')).params.error).toBe('invalid_token');
  });

  it('accepts the default resource spelled explicitly', async () => {
    const { access_token } = await json(await exchange(base, assertion, { resource: base }));
    expect((await callApi(base, access_token)).status).toBe(200);
  });

  it.each([
    ['an unknown resource', 'https://other.example/api'],
    ['a sub-path that is not a resource', '/api/notes'],
    ['a resource with a fragment', '/admin#frag'],
    ['a relative reference', 'admin'],
  ])('refuses %s with invalid_target', async (_label, resource) => {
    const value = resource.startsWith('/') ? base + resource : resource;
    const response = await exchange(base, assertion, { resource: value });
    await expectError(response, 400, 'invalid_target');
    expectNoStore(response);
  });
});

describe('scope narrowing', () => {
  it('grants a narrower scope when asked', async () => {
    const response = await exchange(base, assertion, { scope: 'notes.read' });
    expect(response.status).toBe(200);
    expect((await json(response)).scope).toBe('notes.read');
  });

  it('refuses a post-claim scope before the claim with invalid_scope', async () => {
    for (const scope of ['notes.write', 'notes.read notes.write', 'admin']) {
      const response = await exchange(base, assertion, { scope });
      await expectError(response, 400, 'invalid_scope');
      expectNoStore(response);
    }
  });
});
