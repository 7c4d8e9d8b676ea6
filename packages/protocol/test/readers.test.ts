import { describe, expect, it } from 'vitest';
import {
  advertisedEnvelopes,
  claimedEnvelope,
  claimStartedEnvelope,
  readClaimedEnvelope,
  readClaimStartedEnvelope,
  readRefreshEnvelope,
  readRegistrationEnvelope,
  readTokenResponse,
  readTolerantly,
  refreshEnvelope,
  registrationEnvelope,
  tokenResponse,
  type AccessTokenView,
  type AttemptRead,
  type AttemptView,
  type EnvelopeDialect,
  type IdentityView,
  type RegistrationRead,
  type RegistrationView,
} from '@authmd/protocol';

/** What a client receives: the shaper's envelope, through JSON. */
const wire = (body: unknown): unknown => JSON.parse(JSON.stringify(body));

// Not on a second boundary, so that v0.7's whole-second `expires_in` shows what it loses.
const now = Date.UTC(2026, 10, 28, 12) + 250;
const identity: IdentityView = { assertion: 'eyJ.a.b', expiresAt: now + 3_600_000 };
const refreshable: IdentityView = { ...identity, refreshToken: { value: 'art_1', expiresAt: now + 30 * 86_400_000 } };
const typeIn: AttemptView = { id: 'cla_1', verificationUri: 'https://svc.example/claim?t=cvt_1', expiresAt: now + 600_500, agentCode: '123456', interval: 5 };
/** An attempt of a service whose v0.7 dialect is off: no agent code. */
const readBackOnly: AttemptView = { id: 'cla_2', verificationUri: 'https://svc.example/claim?t=cvt_2', expiresAt: now + 600_000 };
const claim = { token: 'clm_1', expiresAt: now + 86_400_000, url: 'https://svc.example/agent/identity/claim' };

const registrations: Record<string, RegistrationView> = {
  'anonymous with an identity': { id: 'reg_1', type: 'anonymous', identity, scopes: { kind: 'claimable', preClaim: ['r'], postClaim: ['r', 'w'] }, claim },
  'anonymous without an identity': { id: 'reg_2', type: 'anonymous', scopes: { kind: 'claimable', preClaim: [], postClaim: ['r', 'w'] }, claim },
  'service_auth with a ceremony': { id: 'reg_3', type: 'service_auth', scopes: { kind: 'claimable', postClaim: ['r', 'w'] }, claim: { ...claim, attempt: typeIn } },
  'service_auth with an identity and a refresh token': { id: 'reg_4', type: 'service_auth', identity: refreshable, scopes: { kind: 'granted', scopes: ['r', 'w'] } },
  'service_auth with a read-back-only attempt': { id: 'reg_5', type: 'service_auth', scopes: { kind: 'claimable', postClaim: ['r'] }, claim: { ...claim, attempt: readBackOnly } },
  'identity_assertion, clean match': { id: 'reg_6', type: 'identity_assertion', identity: refreshable, scopes: { kind: 'granted', scopes: ['r', 'w'] } },
  'identity_assertion step-up': { id: 'reg_7', type: 'identity_assertion', scopes: { kind: 'claimable', postClaim: ['r', 'w'] }, claim: { ...claim, attempt: typeIn } },
};

const dialectSets: EnvelopeDialect[][] = [['current'], ['v0.7'], ['current', 'v0.7']];

/** The attempt a registration envelope gives back: never its id; the rest as the dialects carry it. */
function attemptRead(attempt: AttemptView, dialects: EnvelopeDialect[]): AttemptRead | undefined {
  const { id: _never, agentCode, interval, ...both } = attempt;
  const typeIn = agentCode === undefined ? {} : { agentCode, ...(interval !== undefined ? { interval } : {}) };
  if (!dialects.includes('v0.7')) return both;
  if (!dialects.includes('current')) return agentCode === undefined ? undefined : { ...both, ...typeIn, expiresAt: now + Math.floor((attempt.expiresAt - now) / 1000) * 1000 };
  return { ...both, ...typeIn };
}

/** The view with exactly what the documentation says the dialects cannot carry taken out. */
function registrationRead(view: RegistrationView, dialects: EnvelopeDialect[]): RegistrationRead {
  const { claim: viewClaim, identity: viewIdentity, ...rest } = view;
  const read: RegistrationRead = { ...rest };
  if (viewIdentity) {
    const { refreshToken: _notInV07, ...v07Identity } = viewIdentity;
    read.identity = dialects.includes('current') ? viewIdentity : v07Identity;
  }
  if (viewClaim) {
    const { attempt, ...handle } = viewClaim;
    const readAttempt = attempt && attemptRead(attempt, dialects);
    read.claim = readAttempt ? { ...handle, attempt: readAttempt } : handle;
  }
  return read;
}

describe('registration envelopes read back (readRegistrationEnvelope ∘ registrationEnvelope)', () => {
  for (const [name, view] of Object.entries(registrations)) {
    for (const dialects of dialectSets) {
      it(`${name}, ${dialects.join(' + ')}`, () => {
        const read = readRegistrationEnvelope(wire(registrationEnvelope(view, dialects, now)), dialects, now);
        expect(read).toEqual({ ok: true, value: registrationRead(view, dialects) });
      });
    }
  }

  it('what each dialect loses, spelled out', () => {
    const ceremony = registrations['service_auth with a ceremony']!;
    const current = readRegistrationEnvelope(wire(registrationEnvelope(ceremony, ['current'], now)), 'current', now);
    expect(current).toMatchObject({ ok: true, value: { claim: { attempt: { verificationUri: typeIn.verificationUri, expiresAt: typeIn.expiresAt } } } });
    if (!current.ok) throw new Error(current.message);
    // current: no attempt id, no agent code, no interval.
    expect(current.value.claim!.attempt).toEqual({ verificationUri: typeIn.verificationUri, expiresAt: typeIn.expiresAt });

    const v07 = readRegistrationEnvelope(wire(registrationEnvelope(ceremony, ['v0.7'], now)), 'v0.7', now);
    if (!v07.ok) throw new Error(v07.message);
    // v0.7: `expires_in` is whole seconds: 600.5 s left reads as 600 s.
    expect(v07.value.claim!.attempt!.expiresAt).toBe(now + 600_000);
    expect(v07.value.claim!.attempt!.id).toBeUndefined();

    const clean = registrations['identity_assertion, clean match']!;
    const flat = readRegistrationEnvelope(wire(registrationEnvelope(clean, ['v0.7'], now)), 'v0.7', now);
    // v0.7 has no refresh tokens.
    expect(flat).toMatchObject({ ok: true, value: { identity: { assertion: identity.assertion, expiresAt: identity.expiresAt } } });
    expect(flat.ok && flat.value.identity?.refreshToken).toBeUndefined();

    const noAgentCode = registrations['service_auth with a read-back-only attempt']!;
    const withoutCeremony = readRegistrationEnvelope(wire(registrationEnvelope(noAgentCode, ['v0.7'], now)), 'v0.7', now);
    // v0.7 carries an attempt only as the type-in ceremony.
    expect(withoutCeremony.ok && withoutCeremony.value.claim).toEqual(claim);
  });

  it('a single dialect is read from the superset too, and a projection a dialect-only service sends is enough', () => {
    const view = registrations['anonymous with an identity']!;
    const superset = wire(registrationEnvelope(view, ['current', 'v0.7'], now));
    expect(readRegistrationEnvelope(superset, 'v0.7', now)).toEqual({ ok: true, value: registrationRead(view, ['v0.7']) });
    expect(readRegistrationEnvelope(superset, ['current'], now)).toEqual({ ok: true, value: registrationRead(view, ['current']) });
    expect(readRegistrationEnvelope(wire(registrationEnvelope(view, ['current'], now)), 'v0.7', now)).toEqual({ ok: false, message: 'registration_id: is required; registration_type: is required' });
  });

  it('ignores members it does not know (a newer service)', () => {
    const view = registrations['service_auth with a ceremony']!;
    const body = wire(registrationEnvelope(view, ['current', 'v0.7'], now)) as Record<string, any>;
    const extended = { ...body, passkey_hint: { rp: 'svc.example' }, claim: { ...body.claim, qr_code: 'data:…', attempt: { ...body.claim.attempt, lang: 'en' } } };
    expect(readRegistrationEnvelope(extended, ['current', 'v0.7'], now)).toEqual({ ok: true, value: registrationRead(view, ['current', 'v0.7']) });
  });

  it('reads a null optional member as absent', () => {
    const body = { ...(wire(registrationEnvelope(registrations['service_auth with a ceremony']!, ['current'], now)) as object), identity: null };
    expect(readRegistrationEnvelope(body, 'current', now)).toMatchObject({ ok: true });
  });

  it('refuses missing and mistyped members, naming them', () => {
    const body = wire(registrationEnvelope(registrations['anonymous with an identity']!, ['current', 'v0.7'], now)) as Record<string, any>;
    const cases: [unknown, EnvelopeDialect | EnvelopeDialect[], string][] = [
      [{ ...body, id: undefined }, 'current', 'id: is required'],
      [{ ...body, id: 7 }, 'current', 'id: must be a string'],
      [{ ...body, type: 'robot' }, 'current', 'type: must be anonymous, service_auth or identity_assertion'],
      [{ ...body, identity: { ...body.identity, expires_at: 'tomorrow' } }, 'current', 'identity.expires_at: must be an ISO-8601 time'],
      [{ ...body, identity: { ...body.identity, expires_at: 1_795_870_800_000 } }, 'current', 'identity.expires_at: must be an ISO-8601 time'],
      [{ ...body, identity: 'eyJ.a.b' }, 'current', 'identity: must be an object'],
      [{ ...body, scopes: 'r w' }, 'current', 'scopes: must be a list of strings or {pre_claim, post_claim}'],
      [{ ...body, scopes: { pre_claim: ['r'], post_claim: ['r', 4] } }, 'current', 'scopes.post_claim.1: must be a string'],
      [{ ...body, claim: { ...body.claim, url: undefined } }, 'current', 'claim.url: is required'],
      [{ ...body, registration_id: undefined }, 'v0.7', 'registration_id: is required'],
      [{ ...body, assertion_expires: undefined }, 'v0.7', 'assertion_expires: is required with identity_assertion'],
      [{ ...body, claim_token_expires: undefined }, 'v0.7', 'claim_token_expires: is required with claim_token'],
      [{ ...body, post_claim_scopes: undefined, pre_claim_scopes: undefined }, 'v0.7', 'scopes: is required (a list, or post_claim_scopes before the claim)'],
      [{ ...body, registration_id: undefined }, ['current', 'v0.7'], 'v0.7: registration_id: is required'],
      [{ ...body, id: null }, ['current', 'v0.7'], 'current: id: must be a string'],
    ];
    for (const [input, dialects, message] of cases) expect(readRegistrationEnvelope(input, dialects, now), message).toEqual({ ok: false, message });
  });

  it('refuses a v0.7 ceremony it cannot use', () => {
    const body = wire(registrationEnvelope(registrations['service_auth with a ceremony']!, ['v0.7'], now)) as Record<string, any>;
    const cases: [unknown, string][] = [
      [{ ...body, claim: { ...body.claim, expires_in: 1e300 } }, 'claim.expires_in: must be at most 10000000000 seconds'],
      [{ ...body, claim: { ...body.claim, expires_in: -1 } }, 'claim.expires_in: must not be negative'],
      [{ ...body, claim: { ...body.claim, expires_in: '600' } }, 'claim.expires_in: must be a number of seconds'],
      [{ ...body, claim: { ...body.claim, interval: 0 } }, 'claim.interval: must be more than 0 seconds'],
      [{ ...body, claim: { ...body.claim, verification_uri: undefined } }, 'claim.verification_uri: is required'],
      [{ ...body, claim_token: undefined, claim_url: undefined, claim_token_expires: undefined }, 'claim_token: is required with claim'],
    ];
    for (const [input, message] of cases) expect(readRegistrationEnvelope(input, 'v0.7', now), message).toEqual({ ok: false, message });
  });

  it('refuses to read without a dialect it knows', () => {
    const body = wire(registrationEnvelope(registrations['anonymous with an identity']!, ['current', 'v0.7'], now));
    expect(readRegistrationEnvelope(body, [], now)).toMatchObject({ ok: false, message: expect.stringMatching(/^dialects: /) });
  });
});

describe('readTolerantly: what can be used of an answer in the other dialect, or with one projection broken', () => {
  const view = registrations['service_auth with a ceremony']!;
  const read = (body: unknown, dialects: readonly EnvelopeDialect[]) => readRegistrationEnvelope(body, dialects, now);
  const both: EnvelopeDialect[] = ['current', 'v0.7'];

  it('the dialects named, together, when the answer has them all', () => {
    expect(readTolerantly(read, wire(registrationEnvelope(view, both, now)), both)).toEqual({ ok: true, value: registrationRead(view, both) });
  });

  it('else one dialect alone: a service advertising v0.7 that answers in current keys', () => {
    expect(readTolerantly(read, wire(registrationEnvelope(view, ['current'], now)), ['v0.7'])).toEqual({ ok: true, value: registrationRead(view, ['current']) });
  });

  it('else one dialect alone: a superset whose v0.7 part is broken', () => {
    const body = { ...(wire(registrationEnvelope(view, both, now)) as object), registration_type: 'robot' };
    expect(readTolerantly(read, body, both)).toEqual({ ok: true, value: registrationRead(view, ['current']) });
  });

  it('the envelopes to read are those the metadata advertises', () => {
    expect(advertisedEnvelopes({ current: true, v07: true, v01: true })).toEqual(['current', 'v0.7']);
    expect(advertisedEnvelopes({ current: false, v07: true, v01: false })).toEqual(['v0.7']);
    expect(advertisedEnvelopes({ current: false, v07: false, v01: true })).toEqual(['current']);
  });

  it('the first refusal when nothing reads', () => {
    expect(readTolerantly(read, { id: 'reg_1' }, both)).toEqual({ ok: false, message: 'current: type: is required; scopes: is required' });
    expect(readTolerantly(read, [], ['v0.7'])).toEqual({ ok: false, message: 'body: must be a JSON object' });
  });
});

describe('refresh envelopes read back', () => {
  it('round trip', () => {
    expect(readRefreshEnvelope(wire(refreshEnvelope('reg_1', refreshable)))).toEqual({ ok: true, value: { registrationId: 'reg_1', identity: refreshable } });
  });

  it('refuses missing and mistyped members', () => {
    const body = wire(refreshEnvelope('reg_1', refreshable)) as Record<string, any>;
    expect(readRefreshEnvelope({ ...body, identity: undefined })).toEqual({ ok: false, message: 'identity: is required' });
    expect(readRefreshEnvelope({ ...body, identity: { ...body.identity, refresh_token: { value: 'art_2' } } })).toEqual({ ok: false, message: 'identity.refresh_token.expires_at: is required' });
    expect(readRefreshEnvelope({ ...body, id: ['reg_1'] })).toEqual({ ok: false, message: 'id: must be a string' });
  });
});

describe('claim-start envelopes read back (readClaimStartedEnvelope ∘ claimStartedEnvelope)', () => {
  for (const type of ['anonymous', 'identity_assertion'] as const) {
    for (const attempt of [typeIn, { ...typeIn, interval: undefined }]) {
      const label = `${type}${attempt.interval === undefined ? ', no interval' : ''}`;
      const body = (dialects: EnvelopeDialect[]) => wire(claimStartedEnvelope({ id: 'reg_1', type }, attempt, dialects, now));
      const { interval, ...withoutInterval } = attempt;
      const full = interval === undefined ? withoutInterval : attempt;

      it(`${label}, current: no registration type, attempt id, agent code or interval`, () => {
        expect(readClaimStartedEnvelope(body(['current']), 'current')).toEqual({
          ok: true,
          value: { registration: { id: 'reg_1' }, attempt: { verificationUri: attempt.verificationUri, expiresAt: attempt.expiresAt } },
        });
      });

      it(`${label}, v0.7: everything (the expiry exact, from expires_at)`, () => {
        expect(readClaimStartedEnvelope(body(['v0.7']), 'v0.7')).toEqual({ ok: true, value: { registration: { id: 'reg_1', type }, attempt: full } });
      });

      it(`${label}, current + v0.7: everything`, () => {
        expect(readClaimStartedEnvelope(body(['current', 'v0.7']), ['current', 'v0.7'])).toEqual({ ok: true, value: { registration: { id: 'reg_1', type }, attempt: full } });
      });
    }
  }

  it('reads the v0.7 answer of a service that does not repeat the registration type', () => {
    const body = wire(claimStartedEnvelope({ id: 'reg_1', type: 'anonymous' }, typeIn, ['v0.7'], now)) as Record<string, unknown>;
    delete body.registration_type;
    expect(readClaimStartedEnvelope(body, 'v0.7')).toEqual({ ok: true, value: { registration: { id: 'reg_1' }, attempt: typeIn } });
  });

  it('refuses missing and mistyped members', () => {
    const body = wire(claimStartedEnvelope({ id: 'reg_1', type: 'anonymous' }, typeIn, ['current', 'v0.7'], now)) as Record<string, any>;
    const cases: [unknown, EnvelopeDialect, string][] = [
      [{ ...body, attempt: undefined }, 'current', 'attempt: is required'],
      [{ ...body, attempt: { ...body.attempt, expires_at: '2026-11-28 12:10' } }, 'current', 'attempt.expires_at: must be an ISO-8601 time'],
      [{ ...body, claim_attempt: undefined }, 'v0.7', 'claim_attempt: is required'],
      [{ ...body, claim_attempt_id: 12 }, 'v0.7', 'claim_attempt_id: must be a string'],
      [{ ...body, status: 'claimed' }, 'v0.7', 'status: must be "initiated"'],
      [{ ...body, claim_attempt: { ...body.claim_attempt, user_code: 123456 } }, 'v0.7', 'claim_attempt.user_code: must be a string'],
    ];
    for (const [input, dialect, message] of cases) expect(readClaimStartedEnvelope(input, dialect), message).toEqual({ ok: false, message });
  });
});

describe('claimed envelopes read back (readClaimedEnvelope ∘ claimedEnvelope)', () => {
  const registration = { id: 'reg_1', type: 'service_auth' as const };
  const body = (dialects: EnvelopeDialect[]) => wire(claimedEnvelope(registration, refreshable, dialects));

  it('current: no registration type', () => {
    expect(readClaimedEnvelope(body(['current']), 'current')).toEqual({ ok: true, value: { registration: { id: 'reg_1' }, identity: refreshable } });
  });

  it('v0.7: no refresh token', () => {
    expect(readClaimedEnvelope(body(['v0.7']), 'v0.7')).toEqual({ ok: true, value: { registration, identity } });
  });

  it('current + v0.7: everything', () => {
    expect(readClaimedEnvelope(body(['current', 'v0.7']), ['current', 'v0.7'])).toEqual({ ok: true, value: { registration, identity: refreshable } });
  });

  it('refuses a claim that is not "claimed", and a missing identity', () => {
    const superset = body(['current', 'v0.7']) as Record<string, any>;
    expect(readClaimedEnvelope({ ...superset, status: 'initiated' }, 'current')).toEqual({ ok: false, message: 'status: must be "claimed"' });
    expect(readClaimedEnvelope({ ...superset, identity: undefined }, 'current')).toEqual({ ok: false, message: 'identity: is required' });
    expect(readClaimedEnvelope({ ...superset, identity_assertion: undefined }, 'v0.7')).toEqual({ ok: false, message: 'identity_assertion: is required' });
    expect(readClaimedEnvelope({ ...superset, assertion_expires: 'soon' }, ['current', 'v0.7'])).toEqual({ ok: false, message: 'v0.7: assertion_expires: must be an ISO-8601 time' });
  });
});

describe('token responses read back (readTokenResponse ∘ tokenResponse)', () => {
  const views: Record<string, AccessTokenView> = {
    'the jwt-bearer exchange': { accessToken: 'at_1', expiresIn: 3600, scopes: ['r', 'w'] },
    'the claim grant, with the identity': { accessToken: 'at_2', expiresIn: 900, scopes: ['r'], identity },
    'no scope at all': { accessToken: 'at_3', expiresIn: 60, scopes: [] },
  };
  for (const [name, view] of Object.entries(views)) {
    it(name, () => {
      expect(readTokenResponse(wire(tokenResponse(view)))).toEqual({ ok: true, value: view });
    });
  }

  it('RFC 6749: expires_in and scope may be absent, token_type is Bearer in any case', () => {
    expect(readTokenResponse({ access_token: 'at_1', token_type: 'bearer' })).toEqual({ ok: true, value: { accessToken: 'at_1' } });
    expect(readTokenResponse({ access_token: 'at_1', token_type: 'BEARER', scope: 'r  w', refresh_token: 'ignored' })).toEqual({ ok: true, value: { accessToken: 'at_1', scopes: ['r', 'w'] } });
  });

  it('refuses missing and mistyped members', () => {
    const body = wire(tokenResponse(views['the claim grant, with the identity']!)) as Record<string, unknown>;
    const cases: [unknown, string][] = [
      [{ ...body, access_token: undefined }, 'access_token: is required'],
      [{ ...body, access_token: '' }, 'access_token: must not be empty'],
      [{ ...body, token_type: 'mac' }, 'token_type: must be Bearer'],
      [{ ...body, token_type: undefined }, 'token_type: is required'],
      [{ ...body, expires_in: '3600' }, 'expires_in: must be a number of seconds'],
      [{ ...body, expires_in: 1e300 }, 'expires_in: must be at most 10000000000 seconds'],
      [{ ...body, scope: ['r'] }, 'scope: must be a string'],
      [{ ...body, assertion_expires: undefined }, 'assertion_expires: is required with identity_assertion'],
    ];
    for (const [input, message] of cases) expect(readTokenResponse(input), message).toEqual({ ok: false, message });
  });
});

describe('hostile bodies', () => {
  const readers: [string, (body: unknown) => unknown][] = [
    ['registration', (body) => readRegistrationEnvelope(body, ['current', 'v0.7'], now)],
    ['registration v0.7', (body) => readRegistrationEnvelope(body, 'v0.7', now)],
    ['refresh', readRefreshEnvelope],
    ['claim started', (body) => readClaimStartedEnvelope(body, ['current', 'v0.7'])],
    ['claimed', (body) => readClaimedEnvelope(body, ['current', 'v0.7'])],
    ['token', readTokenResponse],
  ];
  const notObjects = [null, undefined, [], [{ id: 'reg_1' }], 'reg_1', 42, true];

  for (const [name, read] of readers) {
    it(`${name}: anything but an object is refused, never thrown`, () => {
      for (const body of notObjects) expect(read(body), JSON.stringify(body)).toEqual({ ok: false, message: 'body: must be a JSON object' });
    });

    it(`${name}: odd objects are refused, never thrown`, () => {
      const odd = [
        {},
        JSON.parse('{"__proto__":{"id":"reg_1"},"constructor":{"prototype":{}}}'),
        { id: 'x'.repeat(100_000), identity: { assertion: [], expires_at: '9999-99-99T99:99:99Z' }, claim: { expires_in: Number.MAX_VALUE }, scopes: {} },
        { registration_id: 'r', claim: { user_code: '1', expires_in: 1e308, verification_uri: 'u' }, expires_in: -0, access_token: {}, token_type: null },
      ];
      for (const body of odd) expect(read(body)).toMatchObject({ ok: false, message: expect.any(String) });
    });
  }
});
