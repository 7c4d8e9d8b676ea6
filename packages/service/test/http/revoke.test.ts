import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accessToken, callApi, exchange, postForm, postJson, startService, type RunningService } from '../support/harness.ts';
import { decodeJwt, expectError, expectNoStore, signEs256 } from './helpers.ts';

/** RFC 7009 at /oauth2/revoke. */

let running: RunningService;
let base: string;
beforeEach(async () => {
  running = await startService();
  base = running.base;
});
afterEach(() => running.close());

const revoke = (fields: Record<string, string> | string) => postForm(`${base}/oauth2/revoke`, fields);

describe('revocation endpoint (RFC 7009)', () => {
  it('answers 200 with no-store for a token it does not know', async () => {
    for (const token of ['at_unknown', 'unknown', 'a.b.c']) {
      const response = await revoke({ token });
      expect(response.status, token).toBe(200);
      expectNoStore(response);
    }
  });

  it('revokes an access token and answers 200 with no-store', async () => {
    const { token } = await accessToken(base);
    const response = await revoke({ token, token_type_hint: 'access_token' });
    expect(response.status).toBe(200);
    expectNoStore(response);
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('ignores an unknown token_type_hint: 200, and the token is revoked', async () => {
    const { token } = await accessToken(base);
    const response = await revoke({ token, token_type_hint: 'magic_token' });
    expect(response.status).toBe(200);
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('ignores a misleading token_type_hint: the access token is revoked anyway', async () => {
    const { token } = await accessToken(base);
    expect((await revoke({ token, token_type_hint: 'refresh_token' })).status).toBe(200);
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('answers 200 when the same token is revoked twice', async () => {
    const { token } = await accessToken(base);
    expect((await revoke({ token })).status).toBe(200);
    expect((await revoke({ token })).status).toBe(200);
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('refuses a request without token with 400 invalid_request and no-store', async () => {
    const bodies: Record<string, string>[] = [{}, { token: '' }, { token_type_hint: 'access_token' }];
    for (const body of bodies) {
      const response = await revoke(body);
      await expectError(response, 400, 'invalid_request');
      expectNoStore(response);
    }
  });

  it('refuses a JSON body with 400 invalid_request', async () => {
    const { token } = await accessToken(base);
    const response = await postJson(`${base}/oauth2/revoke`, { token });
    await expectError(response, 400, 'invalid_request');
    expect((await callApi(base, token)).status).toBe(200);
  });

  it('answers 200 to a JWT not signed by us and changes nothing', async () => {
    const { token, registration } = await accessToken(base);
    const { header, payload } = decodeJwt(registration.identity.assertion);
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const jwt of [signEs256(stranger, header, payload), signEs256(stranger, { ...header, kid: 'theirs' }, payload)]) {
      const response = await revoke({ token: jwt });
      expect(response.status).toBe(200);
      expectNoStore(response);
    }
    expect((await callApi(base, token)).status).toBe(200);
    expect((await exchange(base, registration.identity.assertion)).status).toBe(200);
  });

  it('revoking one access token leaves the other tokens of the same registration working', async () => {
    const { token, registration } = await accessToken(base);
    const other = (await (await exchange(base, registration.identity.assertion)).json()).access_token;
    await revoke({ token });
    expect((await callApi(base, token)).status).toBe(401);
    expect((await callApi(base, other)).status).toBe(200);
  });
});
