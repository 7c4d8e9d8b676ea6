import { describe, expect, it } from 'vitest';
import { type AuditEvent, type AuditSink, type Logger } from '@authmd/service';
import { auditEvents, type AuditEventRow } from '../../src/schema.ts';
import { FIRST_RUN, accessTokenFor, registerAnonymous, servicePerTest, sharedStore, type RunningService } from '../support/harness.ts';
import { authorize, claimByReadBack, completeClaim, DAY, deny, pollClaim, refresh, SECOND, signedIn, startClaim, typeIn } from './flows.ts';

/** Audit events for every state change of the ceremony (issue 3, item 8). */

const start = servicePerTest();

async function eventsOf(running: RunningService, registrationId: string): Promise<AuditEventRow[]> {
  const rows = await running.service.store.findMany(auditEvents, 'registration_id', registrationId);
  return rows.sort((a, b) => a.at - b.at || 0);
}

async function typesOf(running: RunningService, registrationId: string): Promise<string[]> {
  return (await eventsOf(running, registrationId)).map((e) => e.type);
}

function count(types: string[], type: string): number {
  return types.filter((t) => t === type).length;
}

describe('audit events', () => {
  it('a full read-back claim of an anonymous registration records every step', async () => {
    const running = await start();
    const { base, clock } = running;
    const registration = await registerAnonymous(base);
    await accessTokenFor(base, registration.identity.assertion); // a pre-claim token
    clock.advance(SECOND);
    await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const { attempt } = await startClaim(base, registration.claim.token, 'ada@example.com');
    const code = await authorize(browser, attempt.verification_uri);
    clock.advance(SECOND);
    const claimed = await (await completeClaim(base, registration.claim.token, code)).json();
    await accessTokenFor(base, claimed.identity.assertion);
    await refresh(base, claimed.identity.refresh_token.value);

    const events = await eventsOf(running, registration.id);
    const types = events.map((e) => e.type);
    for (const type of ['registration.created', 'claim.requested', 'code.revealed', 'claim.confirmed', 'token.issued', 'assertion.refreshed']) {
      expect(types, type).toContain(type);
    }
    expect(count(types, 'registration.created')).toBe(1);
    expect(count(types, 'claim.requested')).toBe(2);
    expect(count(types, 'code.revealed')).toBe(1);
    expect(count(types, 'claim.confirmed')).toBe(1);
    expect(count(types, 'token.issued')).toBe(2);
    expect(count(types, 'assertion.refreshed')).toBe(1);
    // in the order they happened
    expect(types.indexOf('registration.created')).toBeLessThan(types.indexOf('claim.requested'));
    expect(types.indexOf('code.revealed')).toBeLessThan(types.indexOf('claim.confirmed'));
    expect(types.indexOf('claim.confirmed')).toBeLessThan(types.indexOf('assertion.refreshed'));

    const byType = (type: string) => events.find((e) => e.type === type)!;
    expect(byType('registration.created').data).toMatchObject({ type: 'anonymous' });
    expect(byType('claim.requested').data).toMatchObject({ login_hint: 'ada@example.com' });
    const user = byType('claim.confirmed').data!.user_id;
    expect(typeof user).toBe('string');
    expect(byType('code.revealed').data).toMatchObject({ user_id: user });
    expect(byType('token.issued').data).toMatchObject({ scope: 'notes.read' });
    expect(events.filter((e) => e.type === 'token.issued')[1]!.data).toMatchObject({ scope: 'notes.read notes.write' });
    for (const event of events) expect(event.registration_id).toBe(registration.id);
  });

  it('claiming revokes the pre-claim access tokens and records token.revoked', async () => {
    const running = await start();
    const { base } = running;
    const registration = await registerAnonymous(base);
    await accessTokenFor(base, registration.identity.assertion);
    await accessTokenFor(base, registration.identity.assertion);
    const { attempt } = await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    const code = await authorize(browser, attempt.verification_uri);
    expect((await completeClaim(base, registration.claim.token, code)).status).toBe(200);
    // No refresh-token reuse, no /oauth2/revoke: the claim itself revoked the two pre-claim tokens.
    const types = await typesOf(running, registration.id);
    expect(types).toContain('claim.confirmed');
    expect(types).toContain('token.revoked');
  });

  it('refresh-token reuse records token.revoked', async () => {
    const running = await start();
    const claim = await claimByReadBack(running.base, { type: 'service_auth', email: 'ada@example.com' });
    await refresh(running.base, claim.claimed.identity.refresh_token.value);
    await refresh(running.base, claim.claimed.identity.refresh_token.value);
    const events = await eventsOf(running, claim.registration.id);
    const revoked = events.filter((e) => e.type === 'token.revoked');
    expect(revoked).toHaveLength(1);
    expect(revoked[0]!.data).toMatchObject({ reason: 'refresh_token_reused' });
  });

  it('a denied claim records claim.denied (and no claim.confirmed)', async () => {
    const running = await start();
    const registration = await registerAnonymous(running.base);
    const { attempt } = await startClaim(running.base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(running.base, 'ada@example.com');
    expect((await deny(browser, attempt.verification_uri)).status).toBe(200);
    const events = await eventsOf(running, registration.id);
    const denied = events.filter((e) => e.type === 'claim.denied');
    expect(denied).toHaveLength(1);
    expect(typeof denied[0]!.data!.user_id).toBe('string');
    expect(events.map((e) => e.type)).not.toContain('claim.confirmed');
    expect(events.map((e) => e.type)).not.toContain('code.revealed');
  });

  it('a type-in claim records claim.confirmed and the hand-over token.issued', async () => {
    const running = await start();
    const { base, clock } = running;
    const registration = await registerAnonymous(base);
    const started = await startClaim(base, registration.claim.token, 'ada@example.com');
    const browser = await signedIn(base, 'ada@example.com');
    expect((await typeIn(browser, started.attempt.verification_uri, started.claim_attempt.user_code)).status).toBe(200);
    clock.advance(5 * SECOND);
    expect((await pollClaim(base, registration.claim.token)).status).toBe(200);
    const types = await typesOf(running, registration.id);
    expect(count(types, 'claim.confirmed')).toBe(1);
    expect(count(types, 'token.issued')).toBe(1);
    expect(types).not.toContain('code.revealed');
  });

  it('registration.expired appears once the claim window passed and maintain() ran, exactly once', async () => {
    const running = await start();
    const { base, clock, service } = running;
    const unclaimed = await registerAnonymous(base);
    const claimed = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });

    clock.advance(DAY - 1);
    await service.maintain();
    expect(await typesOf(running, unclaimed.id)).not.toContain('registration.expired');

    clock.advance(2);
    await service.maintain();
    await service.maintain();
    clock.advance(DAY);
    await service.maintain();
    const types = await typesOf(running, unclaimed.id);
    expect(count(types, 'registration.expired')).toBe(1);
    expect(await typesOf(running, claimed.registration.id)).not.toContain('registration.expired');
  });

  // Each store is named here: the first run covers them all (FIRST_RUN).
  if (FIRST_RUN) {
    it.each(['sqlite', 'postgres'] as const)('registration.expired is recorded once even when two replicas run maintain() at the same time (%s)', async (backend) => {
      const store = await sharedStore(backend);
      const one = await start({ store: store() });
      const two = await start({ store: store() });
      const registration = await registerAnonymous(one.base);
      one.clock.advance(DAY + 1);
      two.clock.advance(DAY + 1);
      await Promise.all([one.service.maintain(), two.service.maintain(), one.service.maintain(), two.service.maintain()]);
      expect(count(await typesOf(one, registration.id), 'registration.expired')).toBe(1);
    });
  }

  it('the default sink also writes each event to the structured log', async () => {
    const lines: { message: string; fields?: Record<string, unknown> }[] = [];
    const logger: Logger = { info: (message, fields) => lines.push({ message, fields }), warn() {}, error() {} };
    const { base } = await start({ logger });
    const claim = await claimByReadBack(base, { type: 'service_auth', email: 'ada@example.com' });
    const logged = lines.filter((l) => l.message === 'audit' && l.fields?.registration_id === claim.registration.id).map((l) => l.fields!.event);
    expect(logged).toEqual(expect.arrayContaining(['registration.created', 'claim.requested', 'code.revealed', 'claim.confirmed']));
  });

  it('a custom AuditSink receives the events instead of the store', async () => {
    const received: AuditEvent[] = [];
    const audit: AuditSink = { record: async (event) => void received.push(event) };
    const running = await start({ audit });
    const claim = await claimByReadBack(running.base, { type: 'service_auth', email: 'ada@example.com' });
    const mine = received.filter((e) => e.registrationId === claim.registration.id).map((e) => e.type);
    expect(mine).toEqual(['registration.created', 'claim.requested', 'code.revealed', 'claim.confirmed']);
    expect(await eventsOf(running, claim.registration.id)).toEqual([]);
  });
});
