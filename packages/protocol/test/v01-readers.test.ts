import { describe, expect, it } from 'vitest';
import {
  readV01ClaimedEnvelope,
  readV01ClaimStartedEnvelope,
  readV01RegistrationEnvelope,
  v01ClaimedEnvelope,
  v01ClaimStartedEnvelope,
  v01RegistrationEnvelope,
  type V01ClaimHandle,
  type V01ClaimOutcome,
  type V01CredentialView,
  type V01RegistrationView,
} from '@authmd/protocol';

const wire = (body: unknown): unknown => JSON.parse(JSON.stringify(body));

const now = Date.UTC(2026, 10, 28, 12) + 250;
const apiKey: V01CredentialView = { type: 'api_key', value: 'sk_1', expiresAt: null, scopes: ['notes.read'] };
const accessToken: V01CredentialView = { type: 'access_token', value: 'at_1', expiresAt: now + 3_600_000, scopes: ['notes.read', 'notes.write'] };
const handle: V01ClaimHandle = { url: 'https://svc.example/agent/auth/claim', token: 'clm_1', expiresAt: now + 86_400_000, postClaimScopes: ['notes.read', 'notes.write'] };

describe('v0.1 answers read back: nothing is lost', () => {
  const registrations: Record<string, V01RegistrationView> = {
    'anonymous: an API key without expiry and a claim handle': { id: 'reg_1', type: 'anonymous', credential: apiKey, claim: handle },
    'an ID-JAG (agent-provider): an access token': { id: 'reg_2', type: 'identity_assertion', credential: accessToken },
    'a first ID-JAG link: the claim handle only': { id: 'reg_3', type: 'identity_assertion', claim: handle },
    'verified_email (email-verification): the claim handle only': { id: 'reg_4', type: 'service_auth', claim: handle },
  };
  for (const [name, view] of Object.entries(registrations)) {
    it(name, () => {
      expect(readV01RegistrationEnvelope(wire(v01RegistrationEnvelope(view)))).toEqual({ ok: true, value: view });
    });
  }

  it('the claim start', () => {
    const attempt = { id: 'cla_1', expiresAt: now + 600_000 };
    expect(readV01ClaimStartedEnvelope(wire(v01ClaimStartedEnvelope('reg_1', attempt)))).toEqual({ ok: true, value: { registrationId: 'reg_1', attempt } });
  });

  const outcomes: Record<string, V01ClaimOutcome> = {
    'claimed with a fresh access token': { credential: accessToken },
    'claimed with a fresh API key': { credential: apiKey },
    'claimed, the API key upgraded in place': { upgraded: { type: 'api_key', scopes: ['notes.read', 'notes.write'] } },
  };
  for (const [name, outcome] of Object.entries(outcomes)) {
    it(name, () => {
      expect(readV01ClaimedEnvelope(wire(v01ClaimedEnvelope('reg_1', outcome)))).toEqual({ ok: true, value: { registrationId: 'reg_1', outcome } });
    });
  }

  it('ignores members it does not know', () => {
    const body = { ...(wire(v01RegistrationEnvelope({ id: 'reg_1', type: 'anonymous', credential: apiKey, claim: handle })) as object), docs: 'https://svc.example/auth.md', credential_hint: 'Bearer' };
    expect(readV01RegistrationEnvelope(body)).toMatchObject({ ok: true, value: { id: 'reg_1', credential: apiKey, claim: handle } });
  });
});

describe('v0.1 readers refuse what they cannot use, naming the member', () => {
  const anonymous = wire(v01RegistrationEnvelope({ id: 'reg_1', type: 'anonymous', credential: apiKey, claim: handle })) as Record<string, unknown>;

  it('registration', () => {
    const cases: [unknown, string][] = [
      [{ ...anonymous, registration_id: undefined }, 'registration_id: is required'],
      [{ ...anonymous, registration_type: 'service_auth' }, 'registration_type: must be anonymous, agent-provider, email-verification'],
      [{ ...anonymous, credential_type: 'password' }, 'credential_type: must be api_key or access_token'],
      [{ ...anonymous, credential_type: undefined }, 'credential_type: is required with credential'],
      [{ ...anonymous, credential_expires: undefined }, 'credential_expires: is required with credential'],
      [{ ...anonymous, credential_expires: 'never' }, 'credential_expires: must be an ISO-8601 time'],
      [{ ...anonymous, scopes: 'notes.read' }, 'scopes: must be a list of strings'],
      [{ ...anonymous, claim_url: undefined }, 'claim_url: is required with claim_token'],
      [{ ...anonymous, claim_token_expires: 1_795_870_800 }, 'claim_token_expires: must be an ISO-8601 time'],
    ];
    for (const [input, message] of cases) expect(readV01RegistrationEnvelope(input), message).toEqual({ ok: false, message });
  });

  it('claim start', () => {
    const started = wire(v01ClaimStartedEnvelope('reg_1', { id: 'cla_1', expiresAt: now })) as Record<string, unknown>;
    expect(readV01ClaimStartedEnvelope({ ...started, status: 'pending' })).toEqual({ ok: false, message: 'status: must be "initiated"' });
    expect(readV01ClaimStartedEnvelope({ ...started, claim_attempt_id: undefined })).toEqual({ ok: false, message: 'claim_attempt_id: is required' });
    expect(readV01ClaimStartedEnvelope({ ...started, expires_at: null })).toEqual({ ok: false, message: 'expires_at: must be an ISO-8601 time' });
  });

  it('claimed', () => {
    const upgraded = wire(v01ClaimedEnvelope('reg_1', { upgraded: { type: 'api_key', scopes: ['notes.read'] } })) as Record<string, unknown>;
    expect(readV01ClaimedEnvelope({ ...upgraded, credential_type: 'access_token' })).toEqual({ ok: false, message: 'credential: is required (only an API key is upgraded in place, with its new scopes)' });
    expect(readV01ClaimedEnvelope({ ...upgraded, scopes: undefined })).toEqual({ ok: false, message: 'scopes: is required (only an API key is upgraded in place, with its new scopes)' });
    expect(readV01ClaimedEnvelope({ ...upgraded, status: 'initiated' })).toEqual({ ok: false, message: 'status: must be "claimed"' });
    expect(readV01ClaimedEnvelope({ ...upgraded, credential: 'sk_2' })).toEqual({ ok: false, message: 'credential_expires: is required with credential' });
  });

  it('hostile bodies are refused, never thrown', () => {
    for (const read of [readV01RegistrationEnvelope, readV01ClaimStartedEnvelope, readV01ClaimedEnvelope]) {
      for (const body of [null, undefined, [], 'sk_1', 1e308]) expect(read(body)).toEqual({ ok: false, message: 'body: must be a JSON object' });
      for (const body of [{}, { registration_id: {}, status: [], credential: 1, credential_expires: 8.64e15, scopes: [null] }]) {
        expect(read(body)).toMatchObject({ ok: false, message: expect.any(String) });
      }
    }
  });
});
