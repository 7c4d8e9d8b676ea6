import { describe, expect, it } from 'vitest';
import {
  claimedEnvelope,
  claimStartedEnvelope,
  EnvelopeCollisionError,
  mergeDisjoint,
  refreshEnvelope,
  registrationEnvelope,
  tokenResponse,
  type Dialect,
  type RegistrationView,
} from '@authmd/protocol';

const now = Date.UTC(2026, 10, 28, 12);
const identity = { assertion: 'eyJ.a.b', expiresAt: now + 3_600_000 };
const attempt = { id: 'cla_1', verificationUri: 'https://svc.example/claim?t=cvt_1', expiresAt: now + 600_000, agentCode: '123456', interval: 5 };
const claim = { token: 'clm_1', expiresAt: now + 86_400_000, url: 'https://svc.example/agent/identity/claim' };

/** Every registration outcome the engine can describe. */
const views: Record<string, RegistrationView> = {
  anonymous: { id: 'reg_1', type: 'anonymous', identity, scopes: { kind: 'claimable', preClaim: ['r'], postClaim: ['r', 'w'] }, claim },
  serviceAuth: { id: 'reg_2', type: 'service_auth', scopes: { kind: 'claimable', postClaim: ['r', 'w'] }, claim: { ...claim, attempt } },
  idJagClean: { id: 'reg_3', type: 'identity_assertion', identity, scopes: { kind: 'granted', scopes: ['r', 'w'] } },
  idJagStepUp: { id: 'reg_4', type: 'identity_assertion', scopes: { kind: 'claimable', postClaim: ['r', 'w'] }, claim: { ...claim, attempt } },
};

/** Keys both projections may carry, because they carry the same value under the same name. */
const sharedOnPurpose = new Set(['scopes', 'status']);

function topLevelOverlap(current: Record<string, unknown>, v07: Record<string, unknown>): string[] {
  return Object.keys(current).filter((key) => key in v07 && !sharedOnPurpose.has(key) && typeof current[key] !== 'object');
}

describe('superset envelopes (profile.md §1)', () => {
  for (const [name, view] of Object.entries(views)) {
    it(`${name}: current and v0.7 projections merge without a collision`, () => {
      const current = registrationEnvelope(view, ['current'], now);
      const v07 = registrationEnvelope(view, ['v0.7'], now);
      expect(topLevelOverlap(current, v07)).toEqual([]);
      const both = registrationEnvelope(view, ['current', 'v0.7'], now);
      expect(both).toEqual(mergeDisjoint(current, v07));
      for (const key of [...Object.keys(current), ...Object.keys(v07)]) expect(both).toHaveProperty(key);
    });
  }

  it('anonymous: every current and v0.7 key with consistent values', () => {
    const body = JSON.parse(JSON.stringify(registrationEnvelope(views.anonymous!, ['current', 'v0.7'], now)));
    expect(body).toEqual({
      id: 'reg_1',
      type: 'anonymous',
      identity: { assertion: 'eyJ.a.b', expires_at: '2026-11-28T13:00:00.000Z' },
      scopes: { pre_claim: ['r'], post_claim: ['r', 'w'] },
      claim: { token: 'clm_1', expires_at: '2026-11-29T12:00:00.000Z', url: claim.url },
      registration_id: 'reg_1',
      registration_type: 'anonymous',
      identity_assertion: 'eyJ.a.b',
      assertion_expires: '2026-11-28T13:00:00.000Z',
      pre_claim_scopes: ['r'],
      post_claim_scopes: ['r', 'w'],
      claim_token: 'clm_1',
      claim_url: claim.url,
      claim_token_expires: '2026-11-29T12:00:00.000Z',
    });
  });

  it('a ceremony nests both directions inside `claim` without clashing', () => {
    const body = JSON.parse(JSON.stringify(registrationEnvelope(views.serviceAuth!, ['current', 'v0.7'], now)));
    expect(body.claim).toEqual({
      token: 'clm_1',
      expires_at: '2026-11-29T12:00:00.000Z',
      url: claim.url,
      attempt: { verification_uri: attempt.verificationUri, expires_at: '2026-11-28T12:10:00.000Z' },
      user_code: '123456',
      expires_in: 600,
      verification_uri: attempt.verificationUri,
      interval: 5,
    });
    expect(body.identity).toBeUndefined();
  });

  it('the agent code never appears when the v0.7 dialect is off', () => {
    const text = JSON.stringify(registrationEnvelope(views.serviceAuth!, ['current'], now));
    expect(text).not.toContain('123456');
  });

  const pairs: [string, (dialects: Dialect[]) => Record<string, unknown>][] = [
    ['claim started', (d) => claimStartedEnvelope({ id: 'reg_1', type: 'anonymous' }, attempt, d, now)],
    ['claimed', (d) => claimedEnvelope({ id: 'reg_1', type: 'anonymous' }, { ...identity, refreshToken: { value: 'art_1', expiresAt: now } }, d)],
  ];
  for (const [name, shape] of pairs) {
    it(`${name}: the projections merge without a collision`, () => {
      const current = shape(['current']);
      const v07 = shape(['v0.7']);
      expect(topLevelOverlap(current, v07)).toEqual([]);
      expect(shape(['current', 'v0.7'])).toEqual(mergeDisjoint(current, v07));
    });
  }

  it('refresh and token responses have their published shapes', () => {
    expect(JSON.parse(JSON.stringify(refreshEnvelope('reg_1', { ...identity, refreshToken: { value: 'art_2', expiresAt: now } })))).toEqual({
      id: 'reg_1',
      type: 'refresh',
      identity: { assertion: 'eyJ.a.b', expires_at: '2026-11-28T13:00:00.000Z', refresh_token: { value: 'art_2', expires_at: '2026-11-28T12:00:00.000Z' } },
    });
    expect(tokenResponse({ accessToken: 'at_1', expiresIn: 3600, scopes: ['r', 'w'] })).toEqual({
      access_token: 'at_1',
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'r w',
    });
  });

  it('mergeDisjoint refuses two values for one key, at any depth, and accepts equal ones', () => {
    expect(() => mergeDisjoint({ a: 1 }, { a: 2 })).toThrow(EnvelopeCollisionError);
    expect(() => mergeDisjoint({ o: { a: 1 } }, { o: { a: 'x' } })).toThrow(EnvelopeCollisionError);
    expect(() => mergeDisjoint({ o: { a: 1 } }, { o: 'flat' })).toThrow(EnvelopeCollisionError);
    expect(mergeDisjoint({ s: ['x'] }, { s: ['x'], t: 1 })).toEqual({ s: ['x'], t: 1 });
  });
});
