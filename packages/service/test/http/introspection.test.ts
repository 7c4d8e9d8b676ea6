import { describe, expect, it } from 'vitest';
import { accessToken, accessTokenFor, postForm, servicePerTest, type RunningService } from '../support/harness.ts';
import { claimByReadBack } from '../claim/flows.ts';
import { expectError, expectNoStore, json, parseChallenge, WELL_KNOWN_AS } from './helpers.ts';

/** RFC 7662 token introspection at /oauth2/introspect (issue 11): only for configured, authenticated callers. */

const CLIENT = { id: 'notes-api', secret: 'a-random-secret-of-at-least-32-characters' };
const OTHER = { id: 'reports api:1', secret: 'another random secret, 32 characters or more' };
const INTROSPECTION = { clients: [CLIENT, OTHER] };

const start = servicePerTest();
let running: RunningService;

/** HTTP Basic as RFC 6749 §2.3.1 wants it: id and secret form-encoded first. */
function basic(id: string, secret: string): string {
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

function introspect(base: string, fields: Record<string, string>, authorization: string | null = basic(CLIENT.id, CLIENT.secret)): Promise<Response> {
  return postForm(`${base}/oauth2/introspect`, fields, authorization ? { authorization } : {});
}

async function expectInactive(response: Response): Promise<void> {
  expect(response.status).toBe(200);
  expectNoStore(response);
  expect(await json(response)).toEqual({ active: false });
}

describe('introspection endpoint (RFC 7662)', () => {
  it('is off unless configured: no route, and the metadata does not advertise it', async () => {
    running = await start();
    const { token } = await accessToken(running.base);
    const response = await introspect(running.base, { token });
    // Not the service's path: it falls through to the host application, which has nothing there.
    expect(running.service.handles('/oauth2/introspect')).toBe(false);
    expect(response.status).toBe(404);
    expect((await json(response)).active).toBeUndefined();
    const metadata = await json(await fetch(running.base + WELL_KNOWN_AS));
    expect(metadata.introspection_endpoint).toBeUndefined();
    expect(metadata.introspection_endpoint_auth_methods_supported).toBeUndefined();
  });

  it('is advertised in the RFC 8414 metadata when on, with client_secret_basic', async () => {
    running = await start({ introspection: INTROSPECTION });
    const metadata = await json(await fetch(running.base + WELL_KNOWN_AS));
    expect(metadata.introspection_endpoint).toBe(`${running.base}/oauth2/introspect`);
    expect(metadata.introspection_endpoint_auth_methods_supported).toEqual(['client_secret_basic']);
  });

  it('refuses callers without valid credentials: 401 invalid_client with a Basic challenge, no-store', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base } = running;
    const { token } = await accessToken(base);
    const attempts: [string, string | null][] = [
      ['no credentials', null],
      ['wrong secret', basic(CLIENT.id, `${CLIENT.secret}x`)],
      ['wrong id', basic('stranger', CLIENT.secret)],
      ["another client's secret", basic(CLIENT.id, OTHER.secret)],
      ['empty secret', basic(CLIENT.id, '')],
      ['not base64 of id:secret', `Basic ${Buffer.from('no-colon-here').toString('base64')}`],
      ['a bearer token instead', `Bearer ${token}`],
    ];
    for (const [what, authorization] of attempts) {
      const response = await introspect(base, { token }, authorization);
      const body = await expectError(response, 401, 'invalid_client');
      expect(body.active, what).toBeUndefined();
      expectNoStore(response);
      const challenge = parseChallenge(response.headers.get('www-authenticate'));
      expect(challenge.scheme, what).toBe('Basic');
      expect(challenge.params.realm, what).toBe(base);
    }
    // Credentials in the body (client_secret_post) are not a way in either.
    const posted = await introspect(base, { token, client_id: CLIENT.id, client_secret: CLIENT.secret }, null);
    await expectError(posted, 401, 'invalid_client');
  });

  it('accepts form-encoded ids and secrets in Basic (RFC 6749 §2.3.1)', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { token } = await accessToken(running.base);
    const response = await introspect(running.base, { token }, basic(OTHER.id, OTHER.secret));
    expect(response.status).toBe(200);
    expect((await json(response)).active).toBe(true);
  });

  it('describes a live access token: scope, client_id, sub, aud, iss, exp, iat, token_type, registration_id', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base, clock } = running;
    const { token, registration } = await accessToken(base);
    const response = await introspect(base, { token, token_type_hint: 'access_token' });
    expect(response.status).toBe(200);
    expectNoStore(response);
    const body = await json(response);
    const now = Math.floor(clock() / 1000);
    expect(body).toEqual({
      active: true,
      scope: 'notes.read',
      client_id: body.registration_id,
      sub: body.registration_id,
      aud: base,
      iss: base,
      exp: now + 3600,
      iat: now,
      token_type: 'Bearer',
      registration_id: body.registration_id,
    });
    expect(body.registration_id).toBe(registration.id);
    expect(body.registration_id).toMatch(/^reg_/);
  });

  it('names the user as sub (and user_id) once the registration is claimed', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base } = running;
    const claim = await claimByReadBack(base, { type: 'anonymous', email: 'ada@example.com' });
    const token = await accessTokenFor(base, claim.claimed.identity.assertion);
    const body = await json(await introspect(base, { token }));
    expect(body.active).toBe(true);
    expect(body.user_id).toMatch(/^user_/);
    expect(body.sub).toBe(body.user_id);
    expect(body.registration_id).toMatch(/^reg_/);
    expect(body.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
  });

  it('binds aud to the resource the token was issued for', async () => {
    running = await start({ introspection: INTROSPECTION, extraResources: ['/admin'] });
    const { base } = running;
    const { token } = await accessToken(base, { resource: `${base}/admin` });
    expect((await json(await introspect(base, { token }))).aud).toBe(`${base}/admin`);
  });

  it('answers {"active":false} and nothing else for a revoked, expired or unknown access token', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base, clock } = running;
    const revoked = (await accessToken(base)).token;
    expect((await postForm(`${base}/oauth2/revoke`, { token: revoked })).status).toBe(200);
    await expectInactive(await introspect(base, { token: revoked }));

    await expectInactive(await introspect(base, { token: 'at_unknown0000000000000000000000000000000000' }));
    await expectInactive(await introspect(base, { token: 'not-a-token-at-all' }));

    const expiring = (await accessToken(base)).token;
    expect((await json(await introspect(base, { token: expiring }))).active).toBe(true);
    clock.advance(3600 * 1000);
    await expectInactive(await introspect(base, { token: expiring }));
  });

  it('answers {"active":false} for an identity assertion and for a refresh token, whatever the hint', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base } = running;
    const claim = await claimByReadBack(base, { type: 'anonymous', email: 'grace@example.com' });
    const assertion: string = claim.claimed.identity.assertion;
    const refreshToken: string = claim.claimed.identity.refresh_token.value;
    for (const [token, hint] of [
      [assertion, undefined],
      [assertion, 'access_token'],
      [refreshToken, 'refresh_token'],
      [refreshToken, undefined],
    ] as const) {
      await expectInactive(await introspect(base, hint ? { token, token_type_hint: hint } : { token }));
    }
    // Introspecting them spent nothing: the assertion still exchanges.
    expect(await accessTokenFor(base, assertion)).toMatch(/^at_/);
  });

  it('refuses a request without token with 400 invalid_request, and other methods with 405', async () => {
    running = await start({ introspection: INTROSPECTION });
    const { base } = running;
    const response = await introspect(base, { token_type_hint: 'access_token' });
    await expectError(response, 400, 'invalid_request');
    expectNoStore(response);
    const get = await fetch(`${base}/oauth2/introspect`, { headers: { authorization: basic(CLIENT.id, CLIENT.secret) } });
    await expectError(get, 405, 'method_not_allowed');
    expect(get.headers.get('allow')).toBe('POST');
  });

  it('refuses weak or duplicate client configuration at start', async () => {
    await expect(start({ introspection: { clients: [{ id: 'api', secret: 'short' }] } })).rejects.toThrow(/at least 32 characters/);
    await expect(start({ introspection: { clients: [CLIENT, CLIENT] } })).rejects.toThrow(/listed twice/);
    await expect(start({ introspection: { clients: [] } })).rejects.toThrow(/at least one client/);
  });
});
