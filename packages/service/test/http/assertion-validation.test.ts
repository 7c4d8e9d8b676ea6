import { createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { activeKey, b64url, craftAssertion, decodeJwt, expectInvalidGrant, signEs256, type Craft } from './helpers.ts';

/**
 * The jwt-bearer grant refuses every assertion that is not exactly one of ours (RFC 7523 §3,
 * RFC 8725): each case starts from a real assertion and changes one thing.
 */

let running: RunningService;
let base: string;
let assertion: string;
let registrationId: string;
beforeAll(async () => {
  running = await startService();
  base = running.base;
  const registration = await registerAnonymous(base);
  assertion = registration.identity.assertion;
  registrationId = registration.id;
});
afterAll(() => running.close());

const nowSeconds = () => Math.floor(running.clock() / 1000);
const craft = (changes: Craft) => craftAssertion(running.service, assertion, changes);

describe('what is accepted', () => {
  it('accepts the real assertion, and a re-signed copy of it (the crafting is sound)', async () => {
    expect((await exchange(base, assertion)).status).toBe(200);
    expect((await exchange(base, await craft({}))).status).toBe(200);
  });

  it.each(['application/oauth-id-jag+jwt', 'OAUTH-ID-JAG+JWT'])('accepts typ %s (RFC 8725 §3.11)', async (typ) => {
    expect((await exchange(base, await craft({ header: { typ } }))).status).toBe(200);
  });

  it('accepts aud as an array of exactly our issuer', async () => {
    expect((await exchange(base, await craft({ payload: { aud: [base] } }))).status).toBe(200);
  });

  it('accepts iat and nbf slightly in the future, within the clock skew', async () => {
    const soon = nowSeconds() + 30;
    expect((await exchange(base, await craft({ payload: { iat: soon, nbf: soon } }))).status).toBe(200);
  });
});

describe('signature and algorithm', () => {
  it('refuses a tampered payload (another sub, original signature)', async () => {
    const { segments, payload } = decodeJwt(assertion);
    const other = (await registerAnonymous(base)).id;
    const tampered = `${segments[0]}.${b64url({ ...payload, sub: other })}.${segments[2]}`;
    await expectInvalidGrant(await exchange(base, tampered), 'bad_signature');
  });

  it('refuses a tampered signature', async () => {
    const { segments } = decodeJwt(assertion);
    const signature = Buffer.from(segments[2], 'base64url');
    signature[0] = signature[0]! ^ 0xff;
    const tampered = `${segments[0]}.${segments[1]}.${b64url(signature)}`;
    await expectInvalidGrant(await exchange(base, tampered), 'bad_signature');
  });

  it('refuses a signature by another key presented under our kid, even with that key embedded as jwk', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { header, payload } = decodeJwt(assertion);
    const jwk = attacker.publicKey.export({ format: 'jwk' });
    await expectInvalidGrant(await exchange(base, signEs256(attacker.privateKey, header, payload)), 'bad_signature');
    await expectInvalidGrant(await exchange(base, signEs256(attacker.privateKey, { ...header, jwk }, payload)), 'bad_signature');
  });

  it.each(['none', 'None', 'NONE'])('refuses alg %s with an empty or a junk signature', async (alg) => {
    const { header, payload } = decodeJwt(assertion);
    const unsigned = `${b64url({ alg, typ: 'oauth-id-jag+jwt', kid: header.kid })}.${b64url(payload)}`;
    await expectInvalidGrant(await exchange(base, `${unsigned}.`), ['malformed', 'unsupported_alg']);
    await expectInvalidGrant(await exchange(base, `${unsigned}.AAAA`), 'unsupported_alg');
  });

  it('refuses HS256 signed with the public key bytes (algorithm confusion)', async () => {
    const { header, payload } = decodeJwt(assertion);
    const key = await activeKey(running.service);
    const pem = createPublicKey({ key: key.publicJwk as any, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string;
    for (const secret of [JSON.stringify(key.publicJwk), pem]) {
      const input = `${b64url({ ...header, alg: 'HS256' })}.${b64url(payload)}`;
      const mac = createHmac('sha256', secret).update(input).digest('base64url');
      await expectInvalidGrant(await exchange(base, `${input}.${mac}`), 'unsupported_alg');
    }
  });

  it('refuses an unknown kid and a missing kid', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ header: { kid: 'not-our-key' } })), 'unknown_key');
    await expectInvalidGrant(await exchange(base, await craft({ dropHeader: ['kid'] })), 'unknown_key');
  });

  it('refuses unknown critical header parameters', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ header: { crit: ['urn:example:unknown'], 'urn:example:unknown': true } })), 'unsupported_crit');
  });
});

describe('explicit typing (RFC 8725 §3.11)', () => {
  it.each([['JWT'], ['at+jwt'], ['secevent+jwt'], ['id-jag+jwt'], [undefined]])('refuses typ %s', async (typ) => {
    const changes: Craft = typ === undefined ? { dropHeader: ['typ'] } : { header: { typ } };
    await expectInvalidGrant(await exchange(base, await craft(changes)), 'wrong_typ');
  });
});

describe('issuer and audience', () => {
  it('refuses another issuer and our issuer with a trailing slash', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { iss: 'https://evil.example' } })), 'wrong_issuer');
    await expectInvalidGrant(await exchange(base, await craft({ payload: { iss: `${base}/` } })), 'wrong_issuer');
    await expectInvalidGrant(await exchange(base, await craft({ drop: ['iss'] })), 'wrong_issuer');
  });

  it.each([
    ['another audience', 'https://evil.example'],
    ['the token endpoint URL', '/oauth2/token'],
    ['our issuer with a trailing slash', '/'],
  ])('refuses aud = %s', async (_label, aud) => {
    const value = aud.startsWith('/') ? base + aud : aud;
    await expectInvalidGrant(await exchange(base, await craft({ payload: { aud: value } })), 'wrong_audience');
  });

  it('refuses aud as an array of two values, even when one is ours', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { aud: [base, 'https://evil.example'] } })), 'wrong_audience');
    await expectInvalidGrant(await exchange(base, await craft({ payload: { aud: [base, base] } })), 'wrong_audience');
  });

  it('refuses a missing aud', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ drop: ['aud'] })), 'wrong_audience');
  });
});

describe('time claims', () => {
  it('refuses iat beyond the clock skew in the future', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { iat: nowSeconds() + 120 } })), 'issued_in_future');
  });

  it('refuses nbf in the future', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { nbf: nowSeconds() + 120 } })), 'not_yet_valid');
  });

  it('refuses a missing or non-numeric exp', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ drop: ['exp'] })), 'malformed');
    await expectInvalidGrant(await exchange(base, await craft({ payload: { exp: String(nowSeconds() + 600) } })), 'malformed');
  });
});

describe('subject and generation', () => {
  it('refuses a missing gen, or a gen that is not an integer', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ drop: ['gen'] })), 'malformed');
    await expectInvalidGrant(await exchange(base, await craft({ payload: { gen: '0' } })), 'malformed');
  });

  it('refuses an assertion for a registration that does not exist', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { sub: 'reg_does_not_exist' } })), 'unknown_registration');
  });

  it('refuses a future generation of a real registration', async () => {
    await expectInvalidGrant(await exchange(base, await craft({ payload: { sub: registrationId, gen: 7 } })), 'superseded');
  });
});

describe('format (RFC 8725bis: three base64url segments only)', () => {
  it('refuses four segments, the JSON serialisation, and junk', async () => {
    const { segments } = decodeJwt(assertion);
    const jsonSerialisation = JSON.stringify({ protected: segments[0], payload: segments[1], signature: segments[2] });
    for (const value of [`${assertion}.${segments[2]}`, jsonSerialisation, 'junk', `${segments[0]}.${segments[1]}`, `${assertion}=`]) {
      await expectInvalidGrant(await exchange(base, value), 'malformed');
    }
  });
});
