import { describe, expect, it } from 'vitest';
import { registrationByClaimToken } from '../../src/engine/claims.ts';
import { mintRefreshToken } from '../../src/engine/refresh.ts';
import { registerAnonymous, registerServiceAuth } from '../../src/engine/registrations.ts';
import { revokeToken } from '../../src/engine/revocation.ts';
import { accessTokens, claimAttempts, refreshTokens, registrations } from '../../src/schema.ts';
import { cryptoRandom, hashSecret, opaqueValue, secretKey, timeOrderedSecret } from '../../src/secrets.ts';
import { engineContext } from './engine-context.ts';

/**
 * The bearer secrets minted on every registration, exchange and claim start (claim tokens, access
 * tokens and API keys, refresh tokens, claim-attempt tokens) carry their creation time, and their at-rest key starts with it (issue 13):
 * with a bare hash as the key, each new row took a random page of the key's index, which SQLite then
 * wrote to the WAL and copied again at the checkpoint (a third of an anonymous registration's bytes).
 * Secrets issued before the change are keyed by their hash alone and keep working.
 */
describe('time-ordered bearer secrets', () => {
  it('are the prefix, 10 base-32 digits of the millisecond and 32 random bytes; their key is that time part and the SHA-256 of the whole', () => {
    const at = Date.UTC(2026, 11, 6, 12);
    const secret = timeOrderedSecret(cryptoRandom, 'clm_', at);
    expect(secret).toMatch(/^clm_[0-9a-v]{10}[A-Za-z0-9_-]{43}$/);
    expect(secret.slice(4, 14)).toBe(at.toString(32).padStart(10, '0'));
    expect(secretKey(secret)).toBe(secret.slice(4, 14) + hashSecret(secret));
    expect(secretKey(secret)).not.toContain(secret.slice(14));
  });

  it('have keys that sort by creation time, whatever their random part', () => {
    const times = [1, 31, 32, 1_000, Date.UTC(2026, 11, 6), Date.UTC(2026, 11, 6) + 1, Date.UTC(2030, 0, 1)];
    const keys = times.map((at) => secretKey(timeOrderedSecret(cryptoRandom, 'at_', at)));
    expect([...keys].sort()).toEqual(keys);
  });

  it('keep the key of a secret of the earlier form, and of anything that only looks like the new one, to its hash alone', () => {
    const earlier = opaqueValue(cryptoRandom, 'at_');
    expect(earlier).toMatch(/^at_[A-Za-z0-9_-]{43}$/);
    expect(secretKey(earlier)).toBe(hashSecret(earlier));
    // The right length, but the time part is not base-32 digits ('w' is beyond 'v').
    const lookalike = `clm_w${'0'.repeat(9)}${'A'.repeat(43)}`;
    expect(secretKey(lookalike)).toBe(hashSecret(lookalike));
    // One character short or long of the new form.
    for (const odd of [`clm_${'0'.repeat(10)}${'A'.repeat(42)}`, `clm_${'0'.repeat(10)}${'A'.repeat(44)}`]) expect(secretKey(odd)).toBe(hashSecret(odd));
  });

  it('are what the service mints: claim tokens, access tokens, API keys and refresh tokens are stored under keys in the order they were made', async () => {
    const ctx = await engineContext();
    const claimKeys: string[] = [];
    const accessKeys: string[] = [];
    const refreshKeys: string[] = [];
    for (let i = 0; i < 12; i++) {
      const registered = await registerAnonymous(ctx, { clientIp: `192.0.2.${i}` });
      const row = (await ctx.store.get(registrations, registered.id))!;
      expect(row.claim_token_hash).toBe(secretKey(registered.claim!.token));
      claimKeys.push(row.claim_token_hash!);

      const grant = { registrationId: registered.id, userId: null, scopes: ['notes.read'], resource: ctx.config.defaultResource };
      const issued = await ctx.store.transaction((tx) => ctx.tokens.issue(tx, i % 3 === 0 ? { ...grant, apiKey: true } : { ...grant, lifetimeMs: 3_600_000 }));
      expect(issued.accessToken).toMatch(i % 3 === 0 ? /^sk_[0-9a-v]{10}/ : /^at_[0-9a-v]{10}/);
      expect(issued.row.token_hash).toBe(secretKey(issued.accessToken));
      expect((await ctx.tokens.validate(issued.accessToken))?.registration_id).toBe(registered.id);
      accessKeys.push(issued.row.token_hash);

      const refresh = await ctx.store.transaction((tx) => mintRefreshToken(ctx, tx, registered.id));
      expect(await ctx.store.get(refreshTokens, secretKey(refresh.value))).toBeDefined();
      refreshKeys.push(secretKey(refresh.value));
      ctx.clock.advance(i % 2 === 0 ? 1 : 1_000);
    }
    for (const keys of [claimKeys, accessKeys, refreshKeys]) {
      expect(new Set(keys).size).toBe(12);
      expect([...keys].sort()).toEqual(keys);
    }
  });

  it('are what claim attempts get, with an id that sorts by time too: a later attempt lands after an earlier one', async () => {
    const ctx = await engineContext();
    const tokens: string[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const registered = await registerServiceAuth(ctx, { loginHint: `person${i}@example.com`, clientIp: `192.0.2.${i}` });
      const attempt = registered.claim!.attempt!;
      const token = new URL(attempt.verificationUri).searchParams.get('token')!;
      expect(token).toMatch(/^cvt_[0-9a-v]{10}[A-Za-z0-9_-]{43}$/);
      expect(attempt.id).toMatch(/^cla_[0-9a-v]{10}[A-Za-z0-9_-]{16}$/);
      expect((await ctx.store.findOne(claimAttempts, 'attempt_token_hash', secretKey(token)))?.id).toBe(attempt.id);
      tokens.push(secretKey(token));
      ids.push(attempt.id);
      ctx.clock.advance(i % 2 === 0 ? 1 : 1_000);
    }
    for (const keys of [tokens, ids]) expect([...keys].sort()).toEqual(keys);
  });

  it('leave secrets issued before the change working: an access token, a claim token and a refresh token keyed by their hash alone are found, and revoked (RFC 7009)', async () => {
    const ctx = await engineContext();
    const registered = await registerAnonymous(ctx, { clientIp: '192.0.2.1' });
    const now = ctx.clock();

    const accessToken = opaqueValue(cryptoRandom, 'at_');
    await ctx.store.insert(accessTokens, {
      token_hash: hashSecret(accessToken),
      registration_id: registered.id,
      user_id: null,
      scope: 'notes.read',
      resource: ctx.config.defaultResource,
      issued_at: now,
      expires_at: now + 3_600_000,
      revoked_at: null,
      kind: null,
    });
    expect((await ctx.tokens.validate(accessToken))?.registration_id).toBe(registered.id);
    await revokeToken(ctx, accessToken);
    expect(await ctx.tokens.validate(accessToken)).toBeUndefined();

    const claimToken = opaqueValue(cryptoRandom, 'clm_');
    await ctx.store.update(registrations, registered.id, { claim_token_hash: hashSecret(claimToken) });
    expect((await registrationByClaimToken(ctx, claimToken, 'invalid_claim_token')).id).toBe(registered.id);

    const refreshToken = opaqueValue(cryptoRandom, 'art_');
    await ctx.store.insert(refreshTokens, {
      token_hash: hashSecret(refreshToken),
      family_id: 'fam_earlier',
      registration_id: registered.id,
      created_at: now,
      expires_at: now + 86_400_000,
      spent_at: null,
      revoked_at: null,
    });
    await revokeToken(ctx, refreshToken);
    expect((await ctx.store.get(refreshTokens, hashSecret(refreshToken)))?.revoked_at).not.toBeNull();
  });
});
