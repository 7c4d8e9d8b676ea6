import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessToken, callApi, postForm, postJson, startService, type RunningService } from '../support/harness.ts';
import { json, parseChallenge, WELL_KNOWN_PRM } from './helpers.ts';

/** RFC 6750 §3 challenges with the RFC 9728 §5.1 `resource_metadata` parameter. */
describe('resource server challenges', () => {
  let running: RunningService;
  let base: string;
  beforeAll(async () => {
    running = await startService({ extraResources: ['/admin'] });
    base = running.base;
  });
  afterAll(() => running.close());

  it('answers a call without a token with 401 and a bare challenge pointing at the metadata', async () => {
    const response = await callApi(base);
    expect(response.status).toBe(401);
    const header = response.headers.get('www-authenticate');
    expect(header).toBe(`Bearer resource_metadata="${base}${WELL_KNOWN_PRM}"`);
    expect(header).not.toContain('error=');
    const body = await json(response);
    expect(typeof body.error).toBe('string');
    expect(typeof body.error_description).toBe('string');
    expect(body.message).toBe(body.error_description);
  });

  it('points a second resource at its own metadata', async () => {
    const response = await callApi(base, undefined, {}, '/admin/ping');
    expect(response.status).toBe(401);
    expect(parseChallenge(response.headers.get('www-authenticate')).params.resource_metadata).toBe(`${base}${WELL_KNOWN_PRM}/admin`);
  });

  it('answers a garbage token with 401 invalid_token and the metadata URL', async () => {
    for (const token of ['garbage', 'at_not-a-real-token', 'eyJhbGciOiJub25lIn0.e30.']) {
      const response = await callApi(base, token);
      expect(response.status, token).toBe(401);
      const { scheme, params } = parseChallenge(response.headers.get('www-authenticate'));
      expect(scheme).toBe('Bearer');
      expect(params.error).toBe('invalid_token');
      expect(params.resource_metadata).toBe(`${base}${WELL_KNOWN_PRM}`);
      expect((await json(response)).error).toBe('invalid_token');
    }
  });

  it('answers a malformed Authorization header with 401 invalid_token', async () => {
    const response = await fetch(`${base}/api/notes`, { headers: { authorization: 'Bearer two words' } });
    expect(response.status).toBe(401);
    expect(parseChallenge(response.headers.get('www-authenticate')).params.error).toBe('invalid_token');
  });

  it('answers a pre-claim token on a write with 403 insufficient_scope naming the scope', async () => {
    const { token } = await accessToken(base);
    expect((await callApi(base, token)).status).toBe(200);
    const response = await callApi(base, token, { method: 'POST' });
    expect(response.status).toBe(403);
    const { params } = parseChallenge(response.headers.get('www-authenticate'));
    expect(params.error).toBe('insufficient_scope');
    expect(params.scope).toBe('notes.write');
    expect(params.resource_metadata).toBe(`${base}${WELL_KNOWN_PRM}`);
    expect((await json(response)).error).toBe('insufficient_scope');
  });

  it('lets an agent get from a bare 401 to a working call by following the metadata', async () => {
    const challenge = await callApi(base);
    const prmUrl = parseChallenge(challenge.headers.get('www-authenticate')).params.resource_metadata!;
    const prm = await json(await fetch(prmUrl));
    const issuer: string = prm.authorization_servers[0];
    const asUrl = `${new URL(issuer).origin}/.well-known/oauth-authorization-server${new URL(issuer).pathname.replace(/\/$/, '')}`;
    const as = await json(await fetch(asUrl));
    expect(as.issuer).toBe(issuer);

    const registered = await json(await postJson(as.agent_auth.identity_endpoint, { type: 'anonymous' }));
    const tokenResponse = await postForm(as.token_endpoint, {
      grant_type: as.grant_types_supported[0],
      assertion: registered.identity.assertion,
      resource: prm.resource,
    });
    expect(tokenResponse.status).toBe(200);
    const { access_token } = await json(tokenResponse);
    const call = await callApi(base, access_token);
    expect(call.status).toBe(200);
    expect((await call.json()).principal.registrationId).toBe(registered.id);
  });
});
