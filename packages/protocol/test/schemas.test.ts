import { describe, expect, it } from 'vitest';
import { claimCompleteRequest, isEmail, parseClaimRequest, parseIdentityRequest, parseWith, tokenTypes } from '@authmd/protocol';

describe('POST /agent/identity bodies', () => {
  it('accepts every registration type and ignores the extras real clients send', () => {
    expect(parseIdentityRequest({ type: 'anonymous', client_id: 'x', resource: 'https://a' })).toEqual({ ok: true, value: { type: 'anonymous' } });
    expect(parseIdentityRequest({ type: 'service_auth', login_hint: 'a@b.co' })).toMatchObject({ ok: true, value: { login_hint: 'a@b.co' } });
    expect(parseIdentityRequest({ type: 'identity_assertion', assertion: 'j.w.t' })).toMatchObject({ ok: true });
    expect(parseIdentityRequest({ type: 'identity_assertion', assertion_type: tokenTypes.idJag, assertion: 'j.w.t' })).toMatchObject({ ok: true });
    expect(parseIdentityRequest({ type: 'refresh', refresh_token: 'art_1' })).toMatchObject({ ok: true });
  });

  it('names the field and what is wrong with it', () => {
    expect(parseIdentityRequest({ type: 'service_auth' })).toEqual({ ok: false, message: 'login_hint: is required' });
    expect(parseIdentityRequest({ type: 'refresh', refresh_token: 7 })).toEqual({ ok: false, message: 'refresh_token: must be a string' });
    expect(parseIdentityRequest({ type: 'identity_assertion', assertion_type: 'saml', assertion: 'x' })).toEqual({
      ok: false,
      message: `assertion_type: must be ${tokenTypes.idJag}`,
    });
    expect(parseIdentityRequest({ type: 'service_auth', login_hint: '' })).toEqual({ ok: false, message: 'login_hint: must not be empty' });
  });

  it('an unknown, missing or non-string type lists the accepted ones', () => {
    const message = 'type: must be one of anonymous, service_auth, identity_assertion, refresh';
    for (const body of [{ type: 'magic' }, {}, { type: 3 }, { type: 'toString' }]) expect(parseIdentityRequest(body)).toEqual({ ok: false, message });
    for (const body of [null, [], 'anonymous', 4]) expect(parseIdentityRequest(body)).toEqual({ ok: false, message: 'body: must be a JSON object' });
  });
});

describe('POST /agent/identity/claim bodies: four published forms, one command', () => {
  it.each([
    [{ type: 'service_auth', claim_token: 'clm_1', login_hint: 'a@b.co' }],
    [{ type: 'login_hint', claim_token: 'clm_1', login_hint: 'a@b.co' }],
    [{ claim_token: 'clm_1', email: 'a@b.co' }],
    [{ claim_token: 'clm_1', login_hint: 'a@b.co', client_id: 'ignored' }],
  ])('%j starts a claim by login hint', (body) => {
    expect(parseClaimRequest(body)).toEqual({ ok: true, value: { method: 'login_hint', claimToken: 'clm_1', loginHint: 'a@b.co' } });
  });

  it('the ID-JAG form carries the assertion', () => {
    expect(parseClaimRequest({ type: 'identity_assertion', claim_token: 'clm_1', assertion: 'j.w.t' })).toEqual({
      ok: true,
      value: { method: 'identity_assertion', claimToken: 'clm_1', assertion: 'j.w.t' },
    });
  });

  it('refuses incomplete bodies with a message naming the field', () => {
    expect(parseClaimRequest({ claim_token: 'clm_1' })).toEqual({ ok: false, message: 'email: is required' });
    expect(parseClaimRequest({ type: 'login_hint', login_hint: 'a@b.co' })).toEqual({ ok: false, message: 'claim_token: is required' });
    expect(parseClaimRequest({ type: 'otp' })).toEqual({ ok: false, message: 'type: must be one of service_auth, login_hint, identity_assertion' });
  });
});

describe('claim completion and email syntax', () => {
  it('user_code is exactly six digits', () => {
    expect(parseWith(claimCompleteRequest, { claim_token: 'clm_1', user_code: '012345' }).ok).toBe(true);
    for (const code of ['12345', '1234567', '12a456', ' 123456', 123456]) {
      expect(parseWith(claimCompleteRequest, { claim_token: 'clm_1', user_code: code })).toMatchObject({ ok: false });
    }
  });

  it('isEmail accepts addresses and refuses the rest', () => {
    for (const good of ['a@b.co', ' user.name+tag@example.org ', 'x@sub.domain.io']) expect(isEmail(good)).toBe(true);
    for (const bad of ['a@b', 'no-at.example', 'a b@c.de', '@b.co', 'a@.', '', 'a\u0000b@c.de', 'a@b\u001b.co', 'a\u0085@b.co']) expect(isEmail(bad)).toBe(false);
  });
});
