import { ProtocolError } from '@authmd/protocol';
import { beforeEach, describe, expect, it } from 'vitest';
import type { EngineContext } from '../../src/engine/context.ts';
import * as lifecycle from '../../src/engine/registration-lifecycle.ts';
import { mayMint, stateOf, type RegistrationState, type Transition } from '../../src/engine/registration-lifecycle.ts';
import { mintRefreshToken } from '../../src/engine/refresh.ts';
import { accessTokens, auditEvents, refreshTokens, registrations, type RegistrationRow, type UserRow } from '../../src/schema.ts';
import { hashSecret, secretKey } from '../../src/secrets.ts';
import type { TestClock } from '../support/harness.ts';
import { engineContext } from './engine-context.ts';
import { registrationRow } from '../../src/schema.ts';

/**
 * The registration lifecycle as its transition table: for every state and every transition, what
 * happens (the state it leads to) or how it is refused (the error code, or `noop` for the idempotent
 * transitions, which report false and change nothing). Each case also checks what the transition
 * kills: assertions (the generation), access and refresh tokens.
 */

const HOUR = 3_600_000;
const user: UserRow = { id: 'usr_alice', email: 'alice@example.com', email_verified: true, phone: null, created_at: 0 };

type Ctx = EngineContext & { clock: TestClock };

/** A registration in each state, as the store would hold it. */
function rowIn(state: RegistrationState, now: number): RegistrationRow {
  const base = registrationRow({
    id: `reg_${state}`,
    type: 'anonymous',
    created_at: now - HOUR,
    generation: 3,
    claim_token_hash: hashSecret(`clm_${state}`),
    claim_expires_at: now + 23 * HOUR,
    expires_at: now + 30 * 24 * HOUR,
  });
  const provider = { type: 'identity_assertion' as const, provider_iss: 'https://provider.example', provider_sub: 'sub-1', delegation_key: 'https://provider.example\0sub-1', link_user_id: user.id };
  const claimed = { claimed_at: now - HOUR, user_id: user.id, expires_at: null };
  switch (state) {
    case 'unclaimed':
      return base;
    case 'claim_pending':
      return { ...base, current_attempt_id: 'att_1', login_hint: user.email };
    case 'link_pending':
      return { ...base, ...provider, current_attempt_id: 'att_1', login_hint: user.email };
    case 'claimed':
      return { ...base, ...claimed };
    case 'expired':
      return { ...base, claim_expires_at: now - 1 };
    case 'revoked_by_operator':
      return { ...base, ...claimed, revoked_at: now - 1, revoked_by: 'operator' };
    case 'revoked_by_provider':
      return { ...base, ...provider, ...claimed, claim_token_hash: null, revoked_at: now - 1, revoked_by: 'provider' };
  }
}

const states: RegistrationState[] = ['unclaimed', 'claim_pending', 'link_pending', 'claimed', 'expired', 'revoked_by_operator', 'revoked_by_provider'];

/** What each transition does from each state: the state after, an error code, or `noop`. */
const table: Record<Transition, Record<RegistrationState, RegistrationState | 'noop' | string>> = {
  start_attempt: {
    unclaimed: 'claim_pending',
    claim_pending: 'claim_pending',
    link_pending: 'link_pending',
    claimed: 'already_claimed',
    expired: 'claim_expired',
    revoked_by_operator: 'claim_revoked',
    revoked_by_provider: 'claim_expired',
  },
  claim: {
    unclaimed: 'claimed',
    claim_pending: 'claimed',
    link_pending: 'claimed',
    claimed: 'already_claimed',
    expired: 'claim_expired',
    revoked_by_operator: 'claim_revoked',
    revoked_by_provider: 'claim_expired',
  },
  refresh: {
    unclaimed: 'invalid_refresh_token',
    claim_pending: 'invalid_refresh_token',
    link_pending: 'invalid_refresh_token',
    claimed: 'claimed',
    expired: 'invalid_refresh_token',
    revoked_by_operator: 'invalid_refresh_token',
    revoked_by_provider: 'invalid_refresh_token',
  },
  supersede: {
    unclaimed: 'unclaimed',
    claim_pending: 'claim_pending',
    link_pending: 'link_pending',
    claimed: 'claimed',
    expired: 'noop',
    revoked_by_operator: 'noop',
    revoked_by_provider: 'noop',
  },
  revoke: {
    unclaimed: 'revoked_by_operator',
    claim_pending: 'revoked_by_operator',
    link_pending: 'revoked_by_operator',
    claimed: 'revoked_by_operator',
    expired: 'revoked_by_operator',
    revoked_by_operator: 'noop',
    revoked_by_provider: 'revoked_by_operator',
  },
  provider_revoke: {
    unclaimed: 'revoked_by_provider',
    claim_pending: 'revoked_by_provider',
    link_pending: 'revoked_by_provider',
    claimed: 'revoked_by_provider',
    expired: 'revoked_by_provider',
    revoked_by_operator: 'noop',
    revoked_by_provider: 'noop',
  },
  revive: {
    unclaimed: 'noop',
    claim_pending: 'noop',
    link_pending: 'noop',
    claimed: 'noop',
    expired: 'claim_expired',
    revoked_by_operator: 'claim_revoked',
    revoked_by_provider: 'claimed',
  },
  relink: {
    unclaimed: 'link_pending',
    claim_pending: 'link_pending',
    link_pending: 'link_pending',
    claimed: 'link_pending',
    expired: 'link_pending',
    revoked_by_operator: 'claim_revoked',
    revoked_by_provider: 'link_pending',
  },
  expire: {
    unclaimed: 'noop',
    claim_pending: 'noop',
    link_pending: 'noop',
    claimed: 'noop',
    expired: 'expired',
    revoked_by_operator: 'noop',
    revoked_by_provider: 'noop',
  },
};

/** Whether the transition, when it goes through, ends the registration's access and refresh tokens. */
const kills: Record<Transition, { access: boolean; refresh: boolean }> = {
  start_attempt: { access: false, refresh: false },
  claim: { access: true, refresh: false },
  refresh: { access: false, refresh: false },
  supersede: { access: true, refresh: false },
  revoke: { access: true, refresh: true },
  provider_revoke: { access: true, refresh: true },
  revive: { access: false, refresh: false },
  relink: { access: true, refresh: true },
  expire: { access: false, refresh: false },
};

/** Runs one transition in a transaction; `false` from an idempotent one means "nothing done". */
async function run(ctx: Ctx, transition: Transition, row: RegistrationRow): Promise<unknown> {
  return ctx.store.transaction(async (tx) => {
    const current = (await tx.get(registrations, row.id))!;
    switch (transition) {
      case 'start_attempt':
        return lifecycle.startAttempt(ctx, tx, current, { id: 'att_2', loginHint: user.email });
      case 'claim':
        return lifecycle.claim(ctx, tx, current, user);
      case 'refresh':
        return lifecycle.refresh(ctx, tx, current);
      case 'supersede':
        return lifecycle.supersede(ctx, tx, current.id);
      case 'revoke':
        // The state it was revoked from, or undefined for a no-op.
        return (await lifecycle.revoke(ctx, tx, current.id)) ?? false;
      case 'provider_revoke':
        return lifecycle.providerRevoke(ctx, tx, current, 'https://provider.example');
      case 'revive': {
        const after = await lifecycle.revive(ctx, tx, current);
        return after === current ? false : after;
      }
      case 'relink':
        return lifecycle.relink(ctx, tx, current, { claim_token_hash: hashSecret('clm_new'), claim_expires_at: ctx.clock() + HOUR, link_user_id: user.id, expires_at: null });
      case 'expire':
        return lifecycle.expire(ctx, tx, current.id);
    }
  });
}

describe('the registration lifecycle: every (state, transition) pair', () => {
  let ctx: Ctx;
  beforeEach(async () => {
    ctx = await engineContext();
  });

  async function seed(state: RegistrationState) {
    const row = rowIn(state, ctx.clock());
    await ctx.store.insert(registrations, row);
    const issued = await ctx.store.transaction((tx) =>
      ctx.tokens.issue(tx, { registrationId: row.id, userId: row.user_id, scopes: ['notes.read'], resource: ctx.config.defaultResource, lifetimeMs: HOUR }),
    );
    const refresh = await ctx.store.transaction((tx) => mintRefreshToken(ctx, tx, row.id));
    return { row, accessHash: issued.row.token_hash, refreshHash: secretKey(refresh.value) };
  }

  for (const transition of Object.keys(table) as Transition[]) {
    for (const state of states) {
      const expected = table[transition][state];
      const outcome = states.includes(expected as RegistrationState) ? `leads to ${expected}` : expected === 'noop' ? 'changes nothing' : `is refused with ${expected}`;
      it(`${transition} from ${state} ${outcome}`, async () => {
        const { row, accessHash, refreshHash } = await seed(state);
        expect(stateOf(row, ctx.clock())).toBe(state);
        let result: unknown;
        let error: unknown;
        try {
          result = await run(ctx, transition, row);
        } catch (caught) {
          error = caught;
        }
        const after = (await ctx.store.get(registrations, row.id))!;
        const accessLive = (await ctx.store.get(accessTokens, accessHash))!.revoked_at === null;
        const refreshLive = (await ctx.store.get(refreshTokens, refreshHash))!.revoked_at === null;

        if (states.includes(expected as RegistrationState)) {
          expect(error).toBeUndefined();
          expect(result).not.toBe(false);
          expect(stateOf(after, ctx.clock())).toBe(expected);
          expect(accessLive).toBe(!kills[transition].access);
          expect(refreshLive).toBe(!kills[transition].refresh);
          // Every transition that changes what may be minted moves the generation on: older assertions die.
          const bumps = !['start_attempt', 'expire'].includes(transition);
          expect(after.generation).toBe(bumps ? row.generation + 1 : row.generation);
        } else {
          if (expected === 'noop') {
            expect(error).toBeUndefined();
            expect(result).toBe(false);
          } else {
            expect(error).toBeInstanceOf(ProtocolError);
            expect((error as ProtocolError).code).toBe(expected);
          }
          expect(after).toEqual(row);
          expect(accessLive).toBe(true);
          expect(refreshLive).toBe(true);
        }
      });
    }
  }
});

describe('mayMint: the one answer to "may this registration get an assertion or a token now"', () => {
  const now = Date.UTC(2026, 10, 28, 12);
  const cases: [RegistrationState, RegistrationRow['type'], boolean][] = [
    ['unclaimed', 'anonymous', true],
    ['claim_pending', 'anonymous', true],
    ['unclaimed', 'service_auth', false],
    ['claim_pending', 'service_auth', false],
    ['link_pending', 'identity_assertion', false],
    ['claimed', 'anonymous', true],
    ['claimed', 'service_auth', true],
    ['expired', 'anonymous', false],
    ['revoked_by_operator', 'anonymous', false],
    ['revoked_by_provider', 'identity_assertion', false],
  ];
  for (const [state, type, may] of cases) {
    it(`${type} ${state}: ${may ? 'may' : 'may not'}`, () => {
      const row = { ...rowIn(state, now), type };
      expect(stateOf(row, now)).toBe(state);
      expect(mayMint(row, now)).toBe(may);
    });
  }

  it('counts a registration revoked before revoked_by existed as revoked by the operator: final', () => {
    const legacy = { ...rowIn('claimed', now), revoked_at: now - 1, revoked_by: null };
    expect(stateOf(legacy, now)).toBe('revoked_by_operator');
  });
});

describe('the transitions that are not in the plain table', () => {
  let ctx: Ctx;
  beforeEach(async () => {
    ctx = await engineContext();
  });

  it('a clean ID-JAG binds a pending link whose window closed, or that the provider ended', async () => {
    for (const row of [
      { ...rowIn('link_pending', ctx.clock()), id: 'reg_late', claim_expires_at: ctx.clock() - 1 },
      { ...rowIn('revoked_by_provider', ctx.clock()), id: 'reg_ended', claimed_at: null, user_id: null },
    ]) {
      await ctx.store.insert(registrations, row);
      await expect(ctx.store.transaction((tx) => lifecycle.claim(ctx, tx, row, user))).rejects.toMatchObject({ code: 'claim_expired' });
      const after = await ctx.store.transaction((tx) => lifecycle.claim(ctx, tx, row, user, { byCleanIdJag: true }));
      expect(stateOf(after, ctx.clock())).toBe('claimed');
      expect(after.delegation_key).toBe(row.delegation_key);
    }
  });

  it('a clean ID-JAG never revives an operator revocation', async () => {
    const row = rowIn('revoked_by_operator', ctx.clock());
    await ctx.store.insert(registrations, row);
    await expect(ctx.store.transaction((tx) => lifecycle.claim(ctx, tx, row, user, { byCleanIdJag: true }))).rejects.toMatchObject({ code: 'claim_revoked' });
    expect(() => lifecycle.requireNotRevokedByOperator(row)).toThrow(ProtocolError);
  });

  it('a claim by someone other than the matched account drops the provider link', async () => {
    const row = rowIn('link_pending', ctx.clock());
    await ctx.store.insert(registrations, row);
    const after = await ctx.store.transaction((tx) => lifecycle.claim(ctx, tx, row, { id: 'usr_bob' }));
    expect(after).toMatchObject({ user_id: 'usr_bob', provider_iss: null, delegation_key: null, link_user_id: null });
  });

  it('a transition on a stale read is refused, not applied over the newer state', async () => {
    const row = rowIn('claim_pending', ctx.clock());
    await ctx.store.insert(registrations, row);
    await ctx.store.transaction((tx) => lifecycle.revoke(ctx, tx, row.id));
    await expect(ctx.store.transaction((tx) => lifecycle.claim(ctx, tx, row, user))).rejects.toMatchObject({ reason: 'concurrent_change' });
    await expect(ctx.store.transaction((tx) => lifecycle.startAttempt(ctx, tx, row, { id: 'att_9', loginHint: null }))).rejects.toMatchObject({
      reason: 'concurrent_change',
    });
    expect(stateOf((await ctx.store.get(registrations, row.id))!, ctx.clock())).toBe('revoked_by_operator');
  });

  it('records one audit event per transition that changes the state', async () => {
    const row = rowIn('claimed', ctx.clock());
    await ctx.store.insert(registrations, row);
    await ctx.store.transaction((tx) => lifecycle.providerRevoke(ctx, tx, row, 'https://provider.example'));
    ctx.clock.advance(1);
    await ctx.store.transaction(async (tx) => lifecycle.revive(ctx, tx, (await tx.get(registrations, row.id))!));
    ctx.clock.advance(1);
    await ctx.store.transaction((tx) => lifecycle.revoke(ctx, tx, row.id));
    ctx.clock.advance(1);
    await ctx.store.transaction((tx) => lifecycle.revoke(ctx, tx, row.id));
    const events = await ctx.store.findMany(auditEvents, 'registration_id', row.id);
    expect(events.sort((a, b) => a.at - b.at).map((e) => [e.type, (e.data as { reason?: string })?.reason ?? null])).toEqual([
      ['registration.revoked', 'provider_event'],
      ['registration.revived', null],
      ['registration.revoked', 'operator'],
    ]);
  });
});
