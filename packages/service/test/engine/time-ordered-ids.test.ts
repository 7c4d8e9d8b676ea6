import { describe, expect, it } from 'vitest';
import type { TrustedIssuer } from '../../src/config.ts';
import { matchOrProvision } from '../../src/engine/delegations.ts';
import { registerAnonymous } from '../../src/engine/registrations.ts';
import { userForVerifiedEmail } from '../../src/engine/users.ts';
import { auditEvents } from '../../src/schema.ts';
import { cryptoRandom, timeOrderedValue } from '../../src/secrets.ts';
import { engineContext } from './engine-context.ts';

/**
 * Registration, audit event and user ids sort by creation time (issue 13): each new row's key lands at the
 * right edge of its B-trees (the registrations' key, the audit events' key and their registration_id,
 * the claim reminder `expire:<id>`) instead of on a random page, which cut the CPU of an anonymous
 * registration on SQLite by about a quarter (docs/decisions.md). The random part keeps them unguessable.
 */
describe('time-ordered identifiers', () => {
  it('sort as bytes in the order of their milliseconds, across every digit of the time part', () => {
    const times = [0, 1, 31, 32, 1_000, Date.UTC(2026, 11, 6), Date.UTC(2026, 11, 6) + 1, 2 ** 48 - 1];
    const ids = times.map((at) => timeOrderedValue(cryptoRandom, 'reg_', at));
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(/^reg_[0-9a-v]{10}[A-Za-z0-9_-]{16}$/);
    expect(ids[0]!.slice(4, 14)).toBe('0000000000');
    expect(ids.at(-1)!.slice(4, 14)).toBe('7vvvvvvvvv');
  });

  it('differ within one millisecond by 96 random bits', () => {
    const ids = Array.from({ length: 1_000 }, () => timeOrderedValue(cryptoRandom, 'evt_', 1_000));
    expect(new Set(ids).size).toBe(1_000);
    expect(new Set(ids.map((id) => id.slice(0, 14))).size).toBe(1);
  });

  it('are what registrations and their audit events get: a later one sorts after an earlier one', async () => {
    const ctx = await engineContext();
    const made: string[] = [];
    for (let i = 0; i < 20; i++) {
      made.push((await registerAnonymous(ctx, { clientIp: `192.0.2.${i}` })).id);
      ctx.clock.advance(i % 2 === 0 ? 1 : 1_000);
    }
    expect([...made].sort()).toEqual(made);
    const events = await Promise.all(made.map((id) => ctx.store.findMany(auditEvents, 'registration_id', id)));
    const eventIds = events.map((rows) => rows.find((row) => row.type === 'registration.created')!.id);
    expect([...eventIds].sort()).toEqual(eventIds);
    expect(eventIds.every((id) => id.startsWith('evt_'))).toBe(true);
  });

  it('are what new accounts get, by a mailed code or just in time for a provider\'s user: a later one sorts after an earlier one', async () => {
    const ctx = await engineContext();
    const provider = { issuer: 'https://provider.example', displayName: 'Provider' } as TrustedIssuer;
    const made: string[] = [];
    for (let i = 0; i < 10; i++) {
      made.push((await userForVerifiedEmail(ctx, `person${i}@example.com`)).id);
      ctx.clock.advance(1);
      const idJag = { provider, iss: provider.issuer, sub: `sub-${i}`, issuedAt: ctx.clock(), email: `linked${i}@example.com`, phone: undefined, amr: undefined, clientId: provider.issuer };
      const match = await matchOrProvision(ctx, idJag);
      expect(match.kind).toBe('clean');
      made.push(match.user.id);
      ctx.clock.advance(i % 2 === 0 ? 1 : 1_000);
    }
    expect(new Set(made).size).toBe(20);
    expect([...made].sort()).toEqual(made);
    for (const id of made) expect(id).toMatch(/^user_[0-9a-v]{10}[A-Za-z0-9_-]{16}$/);
  });
});
