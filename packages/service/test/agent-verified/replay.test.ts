import { describe, expect, it } from 'vitest';
import { FIRST_RUN, servicePerTest } from '../support/harness.ts';
import { deliverSet, expectRefused, expectSetAccepted, presentIdJag, registerIdJag, trustedService } from './setup.ts';
import { providerPerTest } from './test-provider.ts';
import { jwtPayload, signedIn } from '../claim/flows.ts';

/**
 * standards.md A15 "Replay": an ID-JAG's jti is single use per (iss, jti), burned with an atomic
 * insert-if-absent before the later identity checks (profile.md §2), on every store.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

describe('ID-JAG replay', () => {
  it('the same ID-JAG twice: the second is replay_detected', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const idJag = provider.mintIdJag();
    await registerIdJag(base, idJag);
    await expectRefused(await presentIdJag(base, idJag), 'replay_detected');
  });

  it('a new ID-JAG with the jti of a used one is a replay, whatever else differs', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await registerIdJag(base, provider.mintIdJag({ jti: 'same-jti' }));
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ jti: 'same-jti', sub: 'someone-else', email: 'else@example.com' })), 'replay_detected');
  });

  // Each store is named here: the first run covers them all (FIRST_RUN).
  if (FIRST_RUN) {
    for (const backend of ['memory', 'sqlite', 'postgres'] as const) {
      it(`20 concurrent submissions of one ID-JAG: exactly one is accepted (${backend})`, async () => {
        const provider = await startProvider();
        const { base } = await trustedService(start, { providers: [provider], backend });
        const idJag = provider.mintIdJag();
        const responses = await Promise.all(Array.from({ length: 20 }, () => presentIdJag(base, idJag)));
        const bodies = await Promise.all(responses.map((r) => r.json()));
        const statuses = responses.map((r) => r.status);
        expect(statuses.filter((s) => s === 200)).toHaveLength(1);
        expect(statuses.filter((s) => s === 400)).toHaveLength(19);
        expect(bodies.filter((b) => b.reason === 'replay_detected')).toHaveLength(19);
      });

      it(`20 concurrent distinct ID-JAGs of one new account: all accepted, one registration (${backend})`, async () => {
        const provider = await startProvider();
        const { base } = await trustedService(start, { providers: [provider], backend });
        const responses = await Promise.all(Array.from({ length: 20 }, () => presentIdJag(base, provider.mintIdJag())));
        const bodies = await Promise.all(responses.map((r) => r.json()));
        expect(responses.map((r) => r.status), JSON.stringify(bodies.find((b) => !b.id))).toEqual(Array(20).fill(200));
        expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
      });

      it(`20 concurrent distinct ID-JAGs of one account whose consent was withdrawn before it ever came: all accepted, one registration, one account (${backend})`, async () => {
        const provider = await startProvider();
        const { base, svc } = await trustedService(start, { providers: [provider], backend });
        await expectSetAccepted(await deliverSet(base, provider.mintSet({ sub: 'late' })));
        svc.clock.advance(2000);
        const responses = await Promise.all(Array.from({ length: 20 }, () => presentIdJag(base, provider.mintIdJag({ sub: 'late', email: 'late@example.com' }))));
        const bodies = await Promise.all(responses.map((r) => r.json()));
        expect(responses.map((r) => r.status), JSON.stringify(bodies.find((b) => !b.id))).toEqual(Array(20).fill(200));
        expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
        // One account: users' emails are unique, and every answer speaks for that address.
        expect(bodies.map((b) => jwtPayload(b.identity.assertion).email)).toEqual(Array(20).fill('late@example.com'));
      });

      // 8: each step-up starts a claim attempt, and a registration has 10.
      it(`8 concurrent distinct ID-JAGs of one account that matches an existing one: all step-ups, one registration (${backend})`, async () => {
        const provider = await startProvider();
        const { base } = await trustedService(start, { providers: [provider], backend });
        await signedIn(base, 'ada@example.com');
        const responses = await Promise.all(Array.from({ length: 8 }, () => presentIdJag(base, provider.mintIdJag({ sub: 'ada', email: 'ada@example.com' }))));
        const bodies = await Promise.all(responses.map((r) => r.json()));
        expect(responses.map((r) => r.status), JSON.stringify(bodies.find((b) => b.error !== 'interaction_required'))).toEqual(Array(8).fill(401));
        expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
      });
    }
  }

  it('the same jti from two different trusted issuers is not a replay (keyed per issuer)', async () => {
    const a = await startProvider({ displayName: 'Provider A' });
    const b = await startProvider({ displayName: 'Provider B' });
    const { base } = await trustedService(start, { providers: [a, b] });
    await registerIdJag(base, a.mintIdJag({ jti: 'shared-jti', sub: 'a-user', email: 'a@example.com' }));
    await registerIdJag(base, b.mintIdJag({ jti: 'shared-jti', sub: 'b-user', email: 'b@example.com' }));
    await expectRefused(await presentIdJag(base, b.mintIdJag({ jti: 'shared-jti', sub: 'b-user', email: 'b@example.com' })), 'replay_detected');
  });

  it('the jti is burned before the later identity checks: an ID-JAG refused for auth_time cannot be retried', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const stale = provider.mintIdJag({ auth_time: provider.now() - 7200 });
    expect((await presentIdJag(base, stale)).status).toBe(401);
    await expectRefused(await presentIdJag(base, stale), 'replay_detected');
  });

  it('a forged ID-JAG (bad signature) does not burn the jti of the genuine one', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    const forger = provider.addKey('ES256', 'forger');
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ jti: 'victim' }, { key: forger, header: { kid: provider.keys.ES256.kid } })), 'invalid_signature');
    await registerIdJag(base, provider.mintIdJag({ jti: 'victim' }));
  });

  it('an ID-JAG refused for its audience does not burn the jti', async () => {
    const provider = await startProvider();
    const { base } = await trustedService(start, { providers: [provider] });
    await expectRefused(await presentIdJag(base, provider.mintIdJag({ jti: 'j', aud: 'https://other.example' })), 'invalid_audience');
    await registerIdJag(base, provider.mintIdJag({ jti: 'j' }));
  });
});
