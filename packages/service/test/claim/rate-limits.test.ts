import { describe, expect, it } from 'vitest';
import { FIRST_RUN, postJson, servicePerTest, sharedStore, type RunningService } from '../support/harness.ts';
import { expectError, expectNoStore } from '../http/helpers.ts';
import { HOUR, MINUTE, SECOND, type Json } from './flows.ts';

/** Registration rate limits, profile.md §3 (issue 3, item 7/8): two tiers, 429 with Retry-After and retry_after. */

const start = servicePerTest();

function registerOver(base: string, type: 'anonymous' | 'service_auth'): Promise<Response> {
  return postJson(`${base}/agent/identity`, type === 'anonymous' ? { type } : { type, login_hint: 'ada@example.com' });
}

/** A registration from a given client IP, straight through the service's Web handler. */
function registerFrom(running: RunningService, clientIp: string, type: 'anonymous' | 'service_auth' = 'anonymous'): Promise<Response> {
  const body = type === 'anonymous' ? { type } : { type, login_hint: 'ada@example.com' };
  const request = new Request(`${running.base}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return running.service.handler(request, { clientIp });
}

async function expectRateLimited(response: Response): Promise<number> {
  const body: Json = await expectError(response, 429, 'rate_limit_exceeded');
  expectNoStore(response);
  const header = response.headers.get('retry-after');
  expect(header).toMatch(/^\d+$/);
  expect(body.retry_after).toBe(Number(header));
  expect(body.retry_after).toBeGreaterThan(0);
  expect(body.retry_after).toBeLessThanOrEqual(3600);
  return body.retry_after;
}

describe('registration rate limits with the profile defaults', () => {
  it('anonymous: 5 per hour per IP, then 429 with equal Retry-After and retry_after, allowed again after the hour', async () => {
    const { base, clock } = await start({ rateLimits: {} });
    expect((await registerOver(base, 'anonymous')).status).toBe(200);
    clock.advance(20 * MINUTE);
    for (let i = 2; i <= 5; i++) expect((await registerOver(base, 'anonymous')).status, `registration ${i}`).toBe(200);
    const retryAfter = await expectRateLimited(await registerOver(base, 'anonymous'));
    expect(retryAfter).toBe(40 * 60); // the window opened with the first registration, 20 minutes ago
    clock.advance(retryAfter * SECOND - 1);
    expect(await expectRateLimited(await registerOver(base, 'anonymous'))).toBe(1);
    clock.advance(1);
    expect((await registerOver(base, 'anonymous')).status).toBe(200);
  });

  it('service_auth has its own counters: exhausting anonymous leaves it untouched, and it has the same default', async () => {
    const { base } = await start({ rateLimits: {} });
    for (let i = 0; i < 5; i++) expect((await registerOver(base, 'anonymous')).status).toBe(200);
    await expectRateLimited(await registerOver(base, 'anonymous'));
    for (let i = 0; i < 5; i++) expect((await registerOver(base, 'service_auth')).status, `service_auth ${i + 1}`).toBe(200);
    await expectRateLimited(await registerOver(base, 'service_auth'));
    await expectRateLimited(await registerOver(base, 'anonymous'));
  });

  it('the per-IP tier counts each IP separately', async () => {
    const running = await start({ rateLimits: {} });
    for (let i = 0; i < 5; i++) expect((await registerFrom(running, '192.0.2.1')).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '192.0.2.1'));
    expect((await registerFrom(running, '192.0.2.2')).status).toBe(200);
  });

  it('an IPv6 client counts by its /64: rotating addresses inside it buys no new budget', async () => {
    const running = await start({ rateLimits: {} });
    for (let i = 1; i <= 5; i++) expect((await registerFrom(running, `2001:db8:1:2::${i}`)).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect((await registerFrom(running, '2001:db8:1:3::1')).status).toBe(200);
  });

  it('anonymous: 100 per hour for the whole service, across IPs', async () => {
    const running = await start({ rateLimits: {} });
    for (let i = 0; i < 100; i++) expect((await registerFrom(running, `198.51.100.${i}`)).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '203.0.113.1'));
  });
});

describe('what a refused developer is told (issue 14: never locked out without being told why and how to change it)', () => {
  it('the per-IP refusal, over HTTP: the wait in seconds and in minutes (equal to Retry-After), the limit, and the option that sets it', async () => {
    const { base, clock } = await start({ rateLimits: { anonymous: { perIp: 2, perService: 100 } } });
    for (let i = 0; i < 2; i++) expect((await registerOver(base, 'anonymous')).status).toBe(200);
    clock.advance(20 * MINUTE);
    const refused = await registerOver(base, 'anonymous');
    const retryAfter = await expectRateLimited(refused.clone());
    expect(retryAfter).toBe(40 * 60);
    const body: Json = await refused.json();
    // (the error catalogue's hint for agents follows: wait retry_after seconds)
    expect(body.error_description).toContain(
      'Too many anonymous registrations from your network; retry in 2400 s (40 minutes). ' +
        "At most 2 an hour from one network (IP address; IPv6: its /64); the service's operator sets this limit with the rateLimits.anonymous.perIp option.",
    );
    clock.advance(retryAfter * SECOND - 30 * SECOND);
    const late: Json = await (await registerOver(base, 'anonymous')).json();
    expect(late.error_description).toContain('retry in 30 s (30 seconds).');
  });

  it('the per-service refusal names its own option, and service_auth names its own method', async () => {
    const { base } = await start({ rateLimits: { anonymous: { perIp: 1000, perService: 1 }, service_auth: { perIp: 1, perService: 1000 } } });
    expect((await registerOver(base, 'anonymous')).status).toBe(200);
    const anonymous: Json = await (await registerOver(base, 'anonymous')).json();
    expect(anonymous.error_description).toMatch(/^Too many anonymous registrations at this service, from all clients together; retry in 3600 s \(60 minutes\)\. /);
    expect(anonymous.error_description).toContain("At most 1 an hour for the whole service; the service's operator sets this limit with the rateLimits.anonymous.perService option.");
    expect((await registerOver(base, 'service_auth')).status).toBe(200);
    const serviceAuth = await registerOver(base, 'service_auth');
    await expectRateLimited(serviceAuth.clone());
    expect((await serviceAuth.json()).error_description).toContain('the rateLimits.service_auth.perIp option.');
  });
});

describe('the per-service tier', () => {
  it('gives 429 even when the per-IP limit is far away', async () => {
    const { base } = await start({ rateLimits: { anonymous: { perIp: 1000, perService: 3 } } });
    for (let i = 0; i < 3; i++) expect((await registerOver(base, 'anonymous')).status).toBe(200);
    await expectRateLimited(await registerOver(base, 'anonymous'));
  });

  it('counts every IP together', async () => {
    const running = await start({ rateLimits: { anonymous: { perIp: 1000, perService: 3 } } });
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) expect((await registerFrom(running, ip)).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '192.0.2.4'));
  });

  it('a request refused by the per-IP tier does not count against the service', async () => {
    const running = await start({ rateLimits: { anonymous: { perIp: 2, perService: 4 } } });
    for (let i = 0; i < 2; i++) expect((await registerFrom(running, '192.0.2.1')).status).toBe(200);
    for (let i = 0; i < 5; i++) await expectRateLimited(await registerFrom(running, '192.0.2.1'));
    expect((await registerFrom(running, '192.0.2.2')).status).toBe(200);
    expect((await registerFrom(running, '192.0.2.3')).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '192.0.2.4'));
  });

  it('a flood from one network, sent all at once, spends only its own limit: the others still register', async () => {
    const running = await start({ rateLimits: { anonymous: { perIp: 2, perService: 4 } } });
    // Concurrent, so that a store counting calls together (PostgreSQL batches them) counts them in one go.
    const flood = await Promise.all(Array.from({ length: 50 }, () => registerFrom(running, '192.0.2.1')));
    expect(flood.filter((response) => response.status === 200)).toHaveLength(2);
    for (const response of flood.filter((r) => r.status !== 200)) await expectRateLimited(response);
    expect((await registerFrom(running, '192.0.2.2')).status).toBe(200);
    expect((await registerFrom(running, '192.0.2.3')).status).toBe(200);
    await expectRateLimited(await registerFrom(running, '192.0.2.4'));
  });

  it('service_auth has its own per-service counter', async () => {
    const { base } = await start({ rateLimits: { anonymous: { perIp: 1000, perService: 2 }, service_auth: { perIp: 1000, perService: 2 } } });
    for (let i = 0; i < 2; i++) expect((await registerOver(base, 'anonymous')).status).toBe(200);
    await expectRateLimited(await registerOver(base, 'anonymous'));
    for (let i = 0; i < 2; i++) expect((await registerOver(base, 'service_auth')).status).toBe(200);
    await expectRateLimited(await registerOver(base, 'service_auth'));
  });
});

// Each store is named here: the first run covers them all (FIRST_RUN).
if (FIRST_RUN) {
  describe.each(['sqlite', 'postgres'] as const)('counters live in the store (%s)', (backend) => {
    it('two service instances on one store share them', async () => {
      const store = await sharedStore(backend);
      const one = await start({ rateLimits: {}, store: store() });
      const two = await start({ rateLimits: {}, store: store() });
      for (let i = 0; i < 3; i++) expect((await registerOver(one.base, 'anonymous')).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await registerOver(two.base, 'anonymous')).status).toBe(200);
      await expectRateLimited(await registerOver(one.base, 'anonymous'));
      await expectRateLimited(await registerOver(two.base, 'anonymous'));
      // and both see the window end at the same moment
      one.clock.advance(HOUR);
      two.clock.advance(HOUR);
      expect((await registerOver(two.base, 'anonymous')).status).toBe(200);
      expect((await registerOver(one.base, 'anonymous')).status).toBe(200);
    });

    it('the claim-attempt limit is shared too', async () => {
      const store = await sharedStore(backend);
      const one = await start({ store: store(), limits: { attemptsPerRegistration: 3 } });
      const two = await start({ store: store(), limits: { attemptsPerRegistration: 3 } });
      const registration = await (await registerOver(one.base, 'anonymous')).json();
      const claim = (base: string) => postJson(`${base}/agent/identity/claim`, { claim_token: registration.claim.token, email: 'ada@example.com' });
      expect((await claim(one.base)).status).toBe(200);
      expect((await claim(two.base)).status).toBe(200);
      expect((await claim(one.base)).status).toBe(200);
      await expectError(await claim(two.base), 429, 'too_many_attempts');
    });
  });
}
