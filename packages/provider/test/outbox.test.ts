import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { safeFetch } from '@authmd/core/fetch';
import { createMemoryStore } from '@authmd/core/store';
import type { AgentProvider, Fetcher } from '../src/index.ts';
import { listen, removeTempDirs, sqliteStore, startFakeService, startProvider, tempDir, TestClock, type FakeService, type RunningProvider } from './support.ts';

const REVOKED = 'https://schemas.workos.com/events/agent/auth/identity/assertion/revoked';
const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});
afterAll(removeTempDirs);

async function service(options: Parameters<typeof startFakeService>[0] = {}): Promise<FakeService> {
  const s = await startFakeService(options);
  cleanup.push(s);
  return s;
}
/** A provider that only queues at revocation (no inline attempt), so that the outbox alone is under test. */
async function provider(options: Parameters<typeof startProvider>[0]): Promise<RunningProvider> {
  const r = await startProvider({ ...options, outbox: { random: () => 0.5, inlineTimeoutMs: 0, ...options?.outbox } });
  cleanup.push(r);
  return r;
}
async function revoke(p: AgentProvider, s: FakeService, userId = 'user_ada'): Promise<string> {
  const grant = await p.grants.create(userId, { audience: s.url, mode: 'always' });
  const revoked = await p.grants.delete(userId, grant.id);
  expect(revoked?.revocation).toMatchObject({ status: 'pending', attempts: 0, audience: s.url, userId });
  return revoked!.revocation!.jti;
}
const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti;
function countByJti(s: FakeService): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of s.received) counts.set(jtiOf(r.token), (counts.get(jtiOf(r.token)) ?? 0) + 1);
  return counts;
}

describe('revocation SETs', () => {
  it('pushes a signed SET with the revoked event, per RFC 8417 and RFC 8935', async () => {
    const s = await service();
    const clock = new TestClock(Date.now());
    const { provider: p, server } = await provider({ clock: clock.now });
    const grant = await p.grants.create('user_ada', { audience: s.url, mode: 'once' });
    const revokedAt = clock.seconds;
    clock.advance(5000);
    const revoked = await p.grants.delete('user_ada', grant.id);
    expect(revoked!.grant.id).toBe(grant.id);
    expect(await p.grants.list('user_ada')).toEqual([]);
    expect(await p.deliverDue()).toEqual({ attempted: 1, delivered: 1, retrying: 0, failed: 0 });

    expect(s.received).toHaveLength(1);
    const [delivery] = s.received;
    expect(delivery!.contentType).toBe('application/secevent+jwt');
    expect(delivery!.accept).toBe('application/json');
    const { payload, protectedHeader } = await jwtVerify(delivery!.token, createLocalJWKSet(p.jwks() as never), {
      typ: 'secevent+jwt',
      algorithms: ['ES256'],
      issuer: server.url,
      audience: s.url,
    });
    expect(protectedHeader).toEqual({ kid: p.jwks().keys[0]!.kid, typ: 'secevent+jwt', alg: 'ES256' });
    expect(payload).toEqual({
      iss: server.url,
      sub: 'user_ada',
      aud: s.url,
      jti: revoked!.revocation!.jti,
      iat: clock.seconds,
      toe: revokedAt + 5,
      events: { [REVOKED]: {} },
    });
    expect(payload).not.toHaveProperty('exp');
    const [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 202, lastError: null, nextAttemptAt: null, settledAt: clock.ms });
    expect(await p.deliverDue()).toEqual({ attempted: 0, delivered: 0, retrying: 0, failed: 0 });
  });

  it('retries 503s with growing delays until a 202', async () => {
    const clock = new TestClock();
    const s = await service({ clock: clock.now });
    s.answerWith([{ status: 503 }, { status: 503 }, { status: 202 }]);
    const { provider: p } = await provider({ clock: clock.now });
    const jti = await revoke(p, s);

    expect(await p.deliverDue()).toMatchObject({ attempted: 1, retrying: 1 });
    let [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 503, lastError: 'HTTP 503', nextAttemptAt: clock.ms + 2000 });
    expect((await p.deliverDue()).attempted).toBe(0); // not due yet

    clock.advance(1999);
    expect((await p.deliverDue()).attempted).toBe(0);
    clock.advance(1);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, retrying: 1 });
    [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ attempts: 2, nextAttemptAt: clock.ms + 4000 });

    clock.advance(4000);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, delivered: 1 });
    [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ status: 'delivered', attempts: 3, lastStatus: 202, lastError: null });
    expect(s.received.map((r) => jtiOf(r.token))).toEqual([jti, jti, jti]);
    expect(s.received.map((r) => r.at - s.received[0]!.at)).toEqual([0, 2000, 6000]);
  });

  it('caps the backoff and spreads it with jitter', async () => {
    const s = await service();
    s.answerWith([{ status: 500 }]);
    const clock = new TestClock();
    const randoms = [0, 0.999];
    let i = 0;
    const { provider: p } = await provider({ clock: clock.now, outbox: { random: () => randoms[i++ % 2]!, maxDelayMs: 30_000 } });
    await revoke(p, s);
    const delays: number[] = [];
    for (let n = 0; n < 7; n++) {
      await p.deliverDue();
      const [entry] = await p.outbox.list();
      delays.push(entry!.nextAttemptAt! - clock.ms);
      clock.advance(entry!.nextAttemptAt! - clock.ms);
    }
    expect(delays).toEqual([1600, 4798, 6400, 19194, 25600, 30000, 30000]);
  });

  it('records a 400 {err, description} as failed and never retries it', async () => {
    const s = await service();
    s.answerWith([{ status: 400, body: { err: 'invalid_audience', description: 'Not for us.' } }]);
    const clock = new TestClock();
    const store = createMemoryStore();
    const { provider: p } = await provider({ clock: clock.now, store });
    await revoke(p, s);
    expect(await p.deliverDue()).toEqual({ attempted: 1, delivered: 0, retrying: 0, failed: 1 });
    const [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 400, lastError: '400 invalid_audience: Not for us.', nextAttemptAt: null });
    clock.advance(86_400_000);
    expect((await p.deliverDue()).attempted).toBe(0);
    expect(s.received).toHaveLength(1);
    // Settled rows are kept for inspection for a week, then purged.
    clock.advance(6 * 86_400_000 - 1);
    await store.purgeExpired(clock.ms);
    expect((await p.outbox.list()).length).toBe(1);
    clock.advance(2);
    await store.purgeExpired(clock.ms);
    expect(await p.outbox.list()).toEqual([]);
  });

  it('retries 429 and 408, gives up for good on a redirect', async () => {
    const s = await service();
    s.answerWith([{ status: 429 }, { status: 408 }, { status: 202 }]);
    const clock = new TestClock();
    const { provider: p } = await provider({ clock: clock.now });
    await revoke(p, s);
    expect((await p.deliverDue()).retrying).toBe(1);
    clock.advance(2000);
    expect((await p.deliverDue()).retrying).toBe(1);
    clock.advance(4000);
    expect((await p.deliverDue()).delivered).toBe(1);

    const redirecting = await listen((_req, res) => {
      res.writeHead(302, { Location: 'http://127.0.0.1:1/elsewhere', 'Content-Length': 0 });
      res.end();
    });
    cleanup.push(redirecting);
    const grant = await p.grants.create('user_bob', { audience: s.url, mode: 'always', eventsUri: `${redirecting.url}/events` });
    await p.grants.delete('user_bob', grant.id);
    expect((await p.deliverDue()).failed).toBe(1);
    const entry = (await p.outbox.list({ userId: 'user_bob' }))[0]!;
    expect(entry).toMatchObject({ status: 'failed', endpoint: `${redirecting.url}/events` });
    expect(entry.lastError).toMatch(/^redirect: /);
  });

  it('gives up after giveUpAfterMs of failures', async () => {
    const s = await service();
    s.answerWith([{ status: 503 }]);
    const clock = new TestClock();
    const { provider: p } = await provider({ clock: clock.now, outbox: { giveUpAfterMs: 60_000, random: () => 0.5 } });
    await revoke(p, s);
    let report;
    for (let n = 0; n < 10; n++) {
      report = await p.deliverDue();
      if (report.failed) break;
      clock.advance((await p.outbox.list())[0]!.nextAttemptAt! - clock.ms);
    }
    expect(report!.failed).toBe(1);
    expect((await p.outbox.list())[0]!.lastError).toMatch(/^gave up after \d+ attempts: HTTP 503$/);
  });

  it('sends to the events_uri given at consent, and to none when the service advertises none', async () => {
    const s = await service({ events: false });
    const other = await service();
    const clock = new TestClock();
    const { provider: p } = await provider({ clock: clock.now });
    const silent = await p.grants.create('user_ada', { audience: s.url, mode: 'always' });
    expect(silent.eventsUri).toBeNull();
    expect((await p.grants.delete('user_ada', silent.id))!.revocation).toBeNull();
    expect(await p.outbox.list()).toEqual([]);

    const explicit = await p.grants.create('user_ada', { audience: s.url, mode: 'always', eventsUri: other.eventsEndpoint });
    await p.grants.delete('user_ada', explicit.id);
    expect((await p.deliverDue()).delivered).toBe(1);
    expect(other.received).toHaveLength(1);
    expect(JSON.parse(Buffer.from(other.received[0]!.token.split('.')[1]!, 'base64url').toString()).aud).toBe(s.url);
  });

  it('learns the events endpoint at delivery time when the service was unreachable at revocation', async () => {
    const noEvents = await service({ events: false });
    const port = noEvents.port;
    const clock = new TestClock();
    const { provider: p } = await provider({ clock: clock.now, discoveryCacheMs: 0 });
    const grant = await p.grants.create('user_ada', { audience: noEvents.url, mode: 'always' });
    await noEvents.close();
    const revoked = await p.grants.delete('user_ada', grant.id);
    expect(revoked!.revocation).toMatchObject({ endpoint: null, status: 'pending' });
    expect((await p.deliverDue()).retrying).toBe(1);
    expect((await p.outbox.list())[0]!.lastError).toMatch(/^discovery: /);

    const back = await service({ port }); // now advertising an events endpoint
    clock.advance(2000);
    expect((await p.deliverDue()).delivered).toBe(1);
    expect((await p.outbox.list())[0]!.endpoint).toBe(back.eventsEndpoint);
    expect(back.received).toHaveLength(1);
  });

  it('refuses to delete another user’s grant', async () => {
    const s = await service();
    const { provider: p } = await provider({});
    const grant = await p.grants.create('user_ada', { audience: s.url, mode: 'always' });
    expect(await p.grants.delete('user_eve', grant.id)).toBeUndefined();
    expect(await p.grants.get('user_eve', grant.id)).toBeUndefined();
    expect(await p.grants.delete('user_ada', 'grant_nope')).toBeUndefined();
    expect(await p.outbox.list()).toEqual([]);
    expect(await p.grants.list('user_ada')).toHaveLength(1);
  });

  it('survives a restart: queued while the receiver is down, delivered exactly once after reopening the SQLite file', async () => {
    const dbPath = join(tempDir(), 'provider.db');
    const s = await service();
    const servicePort = s.port;
    const clock = new TestClock();
    const first = await startProvider({ clock: clock.now, store: sqliteStore(dbPath), outbox: { inlineTimeoutMs: 0 } });
    const providerPort = first.server.port;
    const jtis = [await revoke(first.provider, s, 'user_ada'), await revoke(first.provider, s, 'user_grace')];
    await s.close();
    expect(await first.provider.deliverDue()).toMatchObject({ attempted: 2, retrying: 2 });
    await first.close();

    const second = await startProvider({ clock: clock.now, store: sqliteStore(dbPath), port: providerPort });
    cleanup.push(second);
    const queued = await second.provider.outbox.list();
    expect(queued.map((e) => [e.jti, e.status, e.attempts])).toEqual(expect.arrayContaining(jtis.map((jti) => [jti, 'pending', 1])));
    expect(queued[0]!.lastError).toMatch(/^network: /);

    const back = await service({ port: servicePort });
    clock.advance(2500);
    expect(await second.provider.deliverDue()).toMatchObject({ attempted: 2, delivered: 2 });
    clock.advance(3_600_000);
    expect((await second.provider.deliverDue()).attempted).toBe(0);
    expect([...countByJti(back).entries()].sort()).toEqual(jtis.map((jti) => [jti, 1]).sort());
  });

  it('never sends one row twice within a lease: concurrent workers, replicas, and a worker that dies mid-send', async () => {
    const dbPath = join(tempDir(), 'provider.db');
    const s = await service();
    const clock = new TestClock();
    const a = await provider({ clock: clock.now, store: sqliteStore(dbPath) });
    const jtis: string[] = [];
    for (let n = 0; n < 6; n++) jtis.push(await revoke(a.provider, s, `user_${n}`));

    // A replica on the same database, and two concurrent runs on each.
    const b = await provider({ clock: clock.now, store: sqliteStore(dbPath), port: 0 });
    const reports = await Promise.all([a.provider.deliverDue(), a.provider.deliverDue(), b.provider.deliverDue(), b.provider.deliverDue()]);
    expect(reports.reduce((sum, r) => sum + r.delivered, 0)).toBe(6);
    expect([...countByJti(s).values()]).toEqual([1, 1, 1, 1, 1, 1]);

    // A worker leases a row, then hangs (as if it died): nobody else sends it until the lease ends.
    let hung = 0;
    let release: (error: Error) => void = () => {};
    const hanging: Fetcher = (url, options) =>
      options?.method === 'POST'
        ? (hung++, new Promise((_resolve, reject) => (release = reject)))
        : safeFetch(url, options);
    const dying = await provider({ clock: clock.now, store: sqliteStore(dbPath), fetcher: hanging, port: 0 });
    const jti = await revoke(dying.provider, s, 'user_late');
    void dying.provider.deliverDue();
    await waitFor(() => hung === 1);
    expect((await a.provider.deliverDue()).attempted).toBe(0);
    clock.advance(59_999);
    expect((await a.provider.deliverDue()).attempted).toBe(0);
    clock.advance(1);
    expect(await a.provider.deliverDue()).toMatchObject({ attempted: 1, delivered: 1 });
    expect(countByJti(s).get(jti)).toBe(1);
    expect((await a.provider.outbox.list({ userId: 'user_late' }))[0]).toMatchObject({ status: 'delivered', attempts: 2 });
    // The hung worker wakes up after its lease ended: its outcome is not recorded over the delivery.
    release(Object.assign(new Error('socket hang up'), { code: 'network' }));
    await dying.close();
    expect(countByJti(s).get(jti)).toBe(1);
    expect((await a.provider.outbox.list({ userId: 'user_late' }))[0]).toMatchObject({ status: 'delivered', lastError: null });
  });

  it('start() delivers in the background; close() stops it', async () => {
    const s = await service();
    const r = await startProvider({ outbox: { pollIntervalMs: 20, inlineTimeoutMs: 0 } });
    r.provider.start();
    await revoke(r.provider, s);
    await waitFor(() => s.received.length === 1);
    expect(decodeProtectedHeader(s.received[0]!.token).typ).toBe('secevent+jwt');
    await waitFor(async () => (await r.provider.outbox.list())[0]?.status === 'delivered');
    await r.close();
  });
});

describe('the delivery attempt made by grants.delete before it returns', () => {
  it('is made once, inline: delivered; or queued for the outbox on a retryable answer; or failed for good', async () => {
    const s = await service();
    const clock = new TestClock();
    const { provider: p } = await startProviderWith({ clock: clock.now });

    const delivered = await p.grants.delete('user_ada', (await p.grants.create('user_ada', { audience: s.url, mode: 'always' })).id);
    expect(delivered!.delivery).toBe('delivered');
    expect(delivered!.revocation).toMatchObject({ status: 'delivered', attempts: 1, lastStatus: 202, nextAttemptAt: null, settledAt: clock.ms });
    expect(s.received.map((r) => jtiOf(r.token))).toEqual([delivered!.revocation!.jti]);
    expect(await p.deliverDue()).toMatchObject({ attempted: 0 });

    s.answerWith([{ status: 503 }, { status: 202 }]);
    const queued = await p.grants.delete('user_bob', (await p.grants.create('user_bob', { audience: s.url, mode: 'always' })).id);
    expect(queued!.delivery).toBe('queued');
    expect(queued!.revocation).toMatchObject({ status: 'pending', attempts: 1, lastStatus: 503, lastError: 'HTTP 503', nextAttemptAt: clock.ms + 2000 });
    expect((await p.deliverDue()).attempted).toBe(0); // its retry is not due yet
    clock.advance(2000);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, delivered: 1 });
    expect((await p.outbox.list({ userId: 'user_bob' }))[0]).toMatchObject({ status: 'delivered', attempts: 2 });

    s.answerWith([{ status: 400, body: { err: 'invalid_request', description: 'No.' } }]);
    const failed = await p.grants.delete('user_eve', (await p.grants.create('user_eve', { audience: s.url, mode: 'always' })).id);
    expect(failed!.delivery).toBe('failed');
    expect(failed!.revocation).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 400, lastError: '400 invalid_request: No.' });

    const silent = await service({ events: false });
    const none = await p.grants.delete('user_ada', (await p.grants.create('user_ada', { audience: silent.url, mode: 'always' })).id);
    expect(none).toMatchObject({ delivery: 'none', revocation: null });
  });

  it('is bounded by outbox.inlineTimeoutMs: a receiver that never answers leaves the SET queued, and the outbox delivers it later', async () => {
    const s = await service();
    let holding = true;
    const held: Array<() => void> = [];
    const hanging = await listen((req, res) => {
      if (holding) return void held.push(() => res.destroy());
      res.writeHead(202, { 'Content-Length': 0 });
      res.end();
    });
    cleanup.push({ close: async () => (held.forEach((release) => release()), hanging.close()) });
    const clock = new TestClock();
    const { provider: p } = await startProviderWith({ clock: clock.now, outbox: { inlineTimeoutMs: 300 } });
    const grant = await p.grants.create('user_ada', { audience: s.url, mode: 'always', eventsUri: `${hanging.url}/events` });

    const started = Date.now();
    const revoked = await p.grants.delete('user_ada', grant.id);
    const took = Date.now() - started;
    expect(took, 'it waited for the attempt').toBeGreaterThanOrEqual(200);
    expect(took, 'and not beyond the budget (a margin for a loaded machine)').toBeLessThan(1000);
    expect(held).toHaveLength(1);
    expect(revoked!.delivery).toBe('queued');
    expect(await p.grants.get('user_ada', grant.id)).toBeUndefined();
    const [entry] = await p.outbox.list();
    expect(entry).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/^timeout: /) });

    holding = false;
    clock.advance(entry!.nextAttemptAt! - clock.ms);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, delivered: 1 });
    expect((await p.outbox.list())[0]).toMatchObject({ status: 'delivered', attempts: 2, lastStatus: 202 });
  });

  it('is not made with inlineTimeoutMs: 0: the SET is only queued', async () => {
    const s = await service();
    const { provider: p } = await startProviderWith({ outbox: { inlineTimeoutMs: 0 } });
    const revoked = await p.grants.delete('user_ada', (await p.grants.create('user_ada', { audience: s.url, mode: 'always' })).id);
    expect(revoked!.delivery).toBe('queued');
    expect(revoked!.revocation).toMatchObject({ status: 'pending', attempts: 0 });
    expect(s.received).toHaveLength(0);
    expect(await p.deliverDue()).toMatchObject({ attempted: 1, delivered: 1 });
  });
});

/** A provider with the default inline attempt at revocation (at most 2 s), jitter fixed. */
async function startProviderWith(options: NonNullable<Parameters<typeof startProvider>[0]>): Promise<RunningProvider> {
  const r = await startProvider({ ...options, outbox: { random: () => 0.5, ...options.outbox } });
  cleanup.push(r);
  return r;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
