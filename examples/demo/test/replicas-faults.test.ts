import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { grantTypes, paths } from '@authmd/protocol';
import { createTestDatabase, relay, type TestDatabase } from '../../../test-support/postgres.ts';
import { exchange, freePort, notes, startReplica, tempDataDir, type Replica } from './replica-harness.ts';

/**
 * Issue 11, "Operations", the two fault proofs with real servers: two `npm start` processes on one
 * PostgreSQL database (as in replicas.test.ts: A runs the demo provider, B trusts it), under load,
 * 1. one of them SIGKILLed in the middle: the other keeps serving, everything acknowledged still
 *    works afterwards, and the database holds nothing half-written;
 * 2. the database gone for 5 s (a TCP relay in front of it, cut and then listening again): 503 with
 *    Retry-After at once, /readyz not ready while /healthz stays up, and both replicas back by
 *    themselves when the database returns.
 *
 * "Acknowledged" means a 200 whose body was read in full.
 */

/** No single request may take longer than this, outage or not: the service answers fast or not at all. */
const REQUEST_BOUND_MS = 3000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request and how it went: a status with its body, or `error` when the connection failed. */
interface Outcome {
  replica: 'A' | 'B';
  step: 'register' | 'exchange' | 'notes' | 'revoke' | 'readyz' | 'healthz';
  status: number | 'error';
  startedAt: number;
  endedAt: number;
  ms: number;
  retryAfter: string | null;
  contentType: string | null;
  body: any;
  error?: string;
}

function requestFor(step: Outcome['step'], arg?: string): { path: string; init: RequestInit } {
  const form = (fields: Record<string, string>): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  switch (step) {
    case 'register':
      return { path: paths.identity, init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'anonymous' }) } };
    case 'exchange':
      return { path: paths.token, init: form({ grant_type: grantTypes.jwtBearer, assertion: arg! }) };
    case 'revoke':
      return { path: paths.revoke, init: form({ token: arg! }) };
    case 'notes':
      return { path: '/api/notes', init: { headers: { authorization: `Bearer ${arg}` } } };
    case 'readyz':
    case 'healthz':
      return { path: `/${step}`, init: {} };
  }
}

/** Sends one request with a hard bound (a hang shows up as an error, never as a stuck test) and records it. */
async function call(log: Outcome[], replica: 'A' | 'B', base: string, step: Outcome['step'], arg?: string): Promise<Outcome> {
  const { path, init } = requestFor(step, arg);
  const startedAt = performance.now();
  let outcome: Outcome;
  try {
    const response = await fetch(base + path, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text, and the assertions on content-type say so
    }
    const endedAt = performance.now();
    outcome = {
      replica,
      step,
      status: response.status,
      startedAt,
      endedAt,
      ms: endedAt - startedAt,
      retryAfter: response.headers.get('retry-after'),
      contentType: response.headers.get('content-type'),
      body,
    };
  } catch (error) {
    const endedAt = performance.now();
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    outcome = { replica, step, status: 'error', startedAt, endedAt, ms: endedAt - startedAt, retryAfter: null, contentType: null, body: undefined, error: `${String(error)} ${cause ?? ''}` };
  }
  log.push(outcome);
  return outcome;
}

const describeOutcome = (o: Outcome) => `${o.replica} ${o.step} → ${o.status} in ${Math.round(o.ms)} ms ${o.error ?? JSON.stringify(o.body)?.slice(0, 200)}`;

/** Runs `f` over `items`, `width` at a time. */
async function eachLimited<T>(items: T[], width: number, f: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await f(items[next++]!);
  }));
}

interface Pair {
  db: TestDatabase;
  a: Replica;
  b: Replica;
  /** What A was started with, to start it again on the same ports and data directory. */
  envA: Record<string, string>;
}

const dirs: string[] = [];
const running: Replica[] = [];
const databases: TestDatabase[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((replica) => replica.kill()));
  for (const db of databases.splice(0)) await db.drop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A (with the demo provider) then B, on `databaseUrl` (the test database, or a relay in front of it). */
async function startPair(db: TestDatabase, databaseUrl: string): Promise<Pair> {
  const [portA, providerPortA, portB] = [await freePort(), await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${portA}`;
  const shared = { AUTHMD_DATABASE_URL: databaseUrl, AUTHMD_PUBLIC_URL: issuer, AUTHMD_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url') };
  const envA = { ...shared, PORT: String(portA), PROVIDER_PORT: String(providerPortA), AUTHMD_DATA_DIR: tempDataDir(dirs) };
  // A first: it migrates the database and creates the signing keys; B then starts on what A made.
  const a = await startReplica(envA);
  running.push(a);
  const b = await startReplica({ ...shared, PORT: String(portB), AUTHMD_DEMO_PROVIDER_URL: `http://127.0.0.1:${providerPortA}`, AUTHMD_DATA_DIR: tempDataDir(dirs) });
  running.push(b);
  return { db, a, b, envA };
}

describe('two npm start replicas on one PostgreSQL database, under faults', () => {
  it('kill -9 of one replica in the middle of a load run: the other keeps serving, everything acknowledged still works, nothing is half-written', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const { a, b, envA } = await startPair(db, db.url);
    const base = { A: a.url, B: b.url } as const;

    const log: Outcome[] = [];
    const registered: { id: string; assertion: string; by: 'A' | 'B' }[] = [];
    /** revoked: yes (the revocation was acknowledged), no (never asked), maybe (asked, answer lost). */
    const tokens: { token: string; registrationId: string; revoked: 'no' | 'yes' | 'maybe'; by: 'A' | 'B'; at: number }[] = [];
    let killStartedAt = Infinity;
    let aDown = false;
    let stop = false;
    // The registration rate limit is 300 an hour from one address, counted once across both replicas.
    const PHASE1_REGISTRATIONS = 90;
    const MAX_REGISTRATIONS = 220;

    const pick = (n: number): 'A' | 'B' => (aDown || n % 2 === 0 ? 'B' : 'A');
    const send = async (replica: 'A' | 'B', step: Outcome['step'], arg?: string) => {
      const outcome = await call(log, replica, base[replica], step, arg);
      // A refused connection (or a reset) from A: it is down; everything else goes to B.
      if (outcome.status === 'error' && replica === 'A') aDown = true;
      return outcome;
    };

    const worker = async (w: number) => {
      for (let i = 0; !stop && registered.length < MAX_REGISTRATIONS; i++) {
        const first = pick(w + i);
        const second = pick(w + i + 1);
        const reg = await send(first, 'register');
        if (reg.status !== 200) continue;
        const registration = { id: reg.body.id as string, assertion: reg.body.identity.assertion as string, by: first };
        registered.push(registration);
        const tok = await send(second, 'exchange', registration.assertion);
        if (tok.status !== 200) continue;
        const token = { token: tok.body.access_token as string, registrationId: registration.id, revoked: 'no' as 'no' | 'yes' | 'maybe', by: second, at: tok.endedAt };
        tokens.push(token);
        await send(pick(w + i + 2), 'notes', token.token);
        // Every fourth token is revoked at once, on either replica: a revocation acknowledged before the kill holds after it.
        if ((w + i) % 4 === 0) {
          const rev = await send(first, 'revoke', token.token);
          token.revoked = rev.status === 200 ? 'yes' : 'maybe';
        }
      }
    };

    const WORKERS = 6;
    const loadStartedAt = performance.now();
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    while (registered.length < PHASE1_REGISTRATIONS && performance.now() - loadStartedAt < 6000) await sleep(20);
    const beforeKill = { registrations: registered.length, tokens: tokens.length };
    expect(beforeKill.registrations, 'load before the kill').toBeGreaterThan(20);
    expect(log.some((o) => o.replica === 'A' && o.status === 200) && log.some((o) => o.replica === 'B' && o.status === 200)).toBe(true);

    killStartedAt = performance.now();
    await a.kill();
    running.splice(running.indexOf(a), 1);
    const killedAt = performance.now();
    while (performance.now() - killedAt < 2500 && registered.length < MAX_REGISTRATIONS) await sleep(20);
    stop = true;
    await load;

    // Nothing but 200s from B, and from A until it was killed; connection errors only from A, only after the kill.
    const unexpected = log.filter((o) => {
      if (o.status === 'error') return !(o.replica === 'A' && o.endedAt >= killStartedAt);
      if (o.status === 200) return false;
      // A response from A that was cut off while being read shows up as an error above; any status is unexpected.
      return true;
    });
    expect(unexpected.map(describeOutcome)).toEqual([]);
    expect(log.filter((o) => typeof o.status === 'number' && o.status >= 500).map(describeOutcome)).toEqual([]);
    // Every request to B was answered (and fast): B never stalled on A's death.
    const slowB = log.filter((o) => o.replica === 'B' && o.ms > REQUEST_BOUND_MS);
    expect(slowB.map(describeOutcome)).toEqual([]);
    // B kept serving after the kill: whole iterations (registration → token → API) done after A died.
    const servedAfterKill = log.filter((o) => o.replica === 'B' && o.status === 200 && o.startedAt > killedAt);
    const iterationsAfterKill = tokens.filter((t) => t.at > killedAt).length;
    expect(servedAfterKill.length, 'requests B served after the kill').toBeGreaterThan(30);
    expect(iterationsAfterKill, 'tokens issued after the kill').toBeGreaterThan(10);
    expect(servedAfterKill.filter((o) => o.step === 'register').length).toBeGreaterThan(10);

    // Every acknowledged registration: its assertion still exchanges on B (assertions are reusable
    // until superseded; access-token revocation does not supersede them), and that token works on B.
    await eachLimited(registered, 8, async (registration) => {
      const token = await exchange(b.url, registration.assertion);
      const listed = await notes(b.url, token.access_token);
      expect(listed.status, `registration ${registration.id} from ${registration.by}`).toBe(200);
    });
    // Every acknowledged token still works on B, unless its revocation was acknowledged: that one stays refused.
    const verdicts = new Map<string, number>();
    await eachLimited(tokens, 8, async (token) => {
      const status = (await notes(b.url, token.token)).status;
      verdicts.set(token.token, status);
      const expected = token.revoked === 'yes' ? [401] : token.revoked === 'no' ? [200] : [200, 401];
      expect(expected, `token from ${token.by}, revoked: ${token.revoked}`).toContain(status);
    });
    expect(tokens.filter((t) => t.revoked === 'yes').length).toBeGreaterThan(3);

    // Nothing half-written: every change and its audit event landed together or not at all.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const one = async (sql: string) => (await client.query(sql)).rows;
      // Every acknowledged registration and token is in the database.
      const ids = new Set((await one(`SELECT id FROM registrations`)).map((r) => r.id as string));
      expect(registered.filter((r) => !ids.has(r.id)).map((r) => r.id)).toEqual([]);
      const hashes = new Set((await one(`SELECT token_hash FROM access_tokens`)).map((r) => r.token_hash as string));
      // An access token's at-rest key: its time part (after `at_`), then its SHA-256.
      const hash = (token: string) => token.slice(3, 13) + createHash('sha256').update(token).digest('base64url');
      expect(tokens.filter((t) => !hashes.has(hash(t.token))).length).toBe(0);
      // No token without its registration.
      expect(await one(`SELECT t.token_hash FROM access_tokens t LEFT JOIN registrations r ON r.id = t.registration_id WHERE r.id IS NULL`)).toEqual([]);
      // Every registration has its creation event and its expiry reminder (written in the same transaction).
      expect(
        await one(`SELECT r.id FROM registrations r WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.registration_id = r.id AND e.type = 'registration.created')`),
      ).toEqual([]);
      expect(await one(`SELECT r.id FROM registrations r WHERE NOT EXISTS (SELECT 1 FROM scheduled s WHERE s.id = 'expire:' || r.id)`)).toEqual([]);
      // No creation event, or reminder, for a registration that is not there.
      expect(
        await one(`SELECT e.registration_id FROM audit_events e LEFT JOIN registrations r ON r.id = e.registration_id WHERE e.registration_id IS NOT NULL AND r.id IS NULL`),
      ).toEqual([]);
      expect(await one(`SELECT s.id FROM scheduled s LEFT JOIN registrations r ON r.id = s.subject WHERE s.kind = 'registration.expired' AND r.id IS NULL`)).toEqual([]);
      // Per registration: as many tokens as token.issued events, as many revoked tokens as token.revoked events.
      const mismatched = await one(`
        SELECT r.id,
          (SELECT count(*) FROM access_tokens t WHERE t.registration_id = r.id) AS tokens,
          (SELECT count(*) FROM audit_events e WHERE e.registration_id = r.id AND e.type = 'token.issued') AS issued,
          (SELECT count(*) FROM access_tokens t WHERE t.registration_id = r.id AND t.revoked_at IS NOT NULL) AS revoked,
          (SELECT count(*) FROM audit_events e WHERE e.registration_id = r.id AND e.type = 'token.revoked') AS revocations
        FROM registrations r`);
      expect(mismatched.filter((r) => r.tokens !== r.issued || r.revoked !== r.revocations)).toEqual([]);
      // The rate-limit counter counted at least every registration that landed (a refused or lost one may count too).
      const [counter] = await one(`SELECT sum(count)::int AS n FROM authmd_counters WHERE key LIKE 'rate:anonymous:ip:%'`);
      expect(counter!.n).toBeGreaterThanOrEqual(ids.size);
    } finally {
      await client.end();
    }

    // A comes back on the same database, ports and data directory, and serves again: new work, and the old tokens.
    const again = await startReplica(envA);
    running.push(again);
    expect((await fetch(`${again.url}/readyz`)).status).toBe(200);
    const fresh = await call(log, 'A', again.url, 'register');
    expect(fresh.status, describeOutcome(fresh)).toBe(200);
    const freshToken = await exchange(again.url, fresh.body.identity.assertion);
    for (const where of [again.url, b.url]) expect((await notes(where, freshToken.access_token)).status).toBe(200);
    await eachLimited(tokens, 8, async (token) => {
      // The same verdict on the restarted A as on B, including for the revocations whose answer was lost.
      expect((await notes(again.url, token.token)).status, `token from ${token.by}, revoked: ${token.revoked}`).toBe(verdicts.get(token.token));
    });

    expect(await again.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  }, 80_000);
  it('the database stops for 5 s in the middle of a run: 503 with Retry-After at once, /readyz not ready, /healthz up; both replicas recover by themselves and lose nothing', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const target = new URL(db.url);
    // The replicas reach PostgreSQL only through this relay: cutting it is the database stopping
    // (open connections dropped, new ones refused); listening again on the same port is it coming back.
    let link = await relay(target);
    const through = new URL(db.url);
    through.host = `127.0.0.1:${link.port}`;
    const { a, b } = await startPair(db, through.toString());
    const base = { A: a.url, B: b.url } as const;

    const log: Outcome[] = [];
    const tokens: { token: string; assertion: string; at: number }[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const first: 'A' | 'B' = (w + i) % 2 === 0 ? 'A' : 'B';
        const second: 'A' | 'B' = first === 'A' ? 'B' : 'A';
        const reg = await call(log, first, base[first], 'register');
        if (reg.status === 200) {
          const tok = await call(log, second, base[second], 'exchange', reg.body.identity.assertion);
          if (tok.status === 200) {
            tokens.push({ token: tok.body.access_token, assertion: reg.body.identity.assertion, at: tok.endedAt });
            await call(log, first, base[first], 'notes', tok.body.access_token);
          }
        } else if (tokens.length > 0) {
          // The registration was refused: an older token is tried instead (an API call needing the database too).
          await call(log, second, base[second], 'notes', tokens[(w + i) % tokens.length]!.token);
        }
        await sleep(100); // a light load: the point is the outage, not the throughput
      }
    };
    const load = Promise.all([0, 1].map((w) => worker(w)));
    const loadStartedAt = performance.now();
    while (tokens.length < 8 && performance.now() - loadStartedAt < 15_000) await sleep(20);
    expect(tokens.length, 'tokens before the outage').toBeGreaterThanOrEqual(8);
    const acknowledgedBefore = tokens.slice();

    // The database goes away in the middle of writes: a burst of registrations on both replicas is in
    // flight when the relay is cut (some commit and are acknowledged, the rest are refused).
    const burst = Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const r: 'A' | 'B' = i % 2 === 0 ? 'A' : 'B';
        const reg = await call(log, r, base[r], 'register');
        const tok = reg.status === 200 ? await call(log, r, base[r], 'exchange', reg.body.identity.assertion) : undefined;
        if (tok?.status === 200) acknowledgedBefore.push({ token: tok.body.access_token, assertion: reg.body.identity.assertion, at: tok.endedAt });
      }),
    );
    await sleep(15);
    const cutAt = performance.now();
    await link.cut();
    await burst;
    // While the database is away: the probes, on both replicas, a few times a second.
    const probes: Outcome[] = [];
    while (performance.now() - cutAt < 5000) {
      await Promise.all((['A', 'B'] as const).flatMap((r) => [call(probes, r, base[r], 'readyz'), call(probes, r, base[r], 'healthz'), call(probes, r, base[r], 'register')]));
      await sleep(250);
    }
    link = await relay(target, link.port); // the database is back, on the same address
    const resumedAt = performance.now();

    // Both replicas serve again by themselves, within a bound: registration, exchange on the other, API.
    const recoveredAt: Record<string, number> = {};
    const recovery: Outcome[] = [];
    for (const r of ['A', 'B'] as const) {
      const other = r === 'A' ? 'B' : 'A';
      while (recoveredAt[r] === undefined && performance.now() - resumedAt < 15_000) {
        const ready = await call(recovery, r, base[r], 'readyz');
        const reg = await call(recovery, r, base[r], 'register');
        const tok = reg.status === 200 ? await call(recovery, other, base[other], 'exchange', reg.body.identity.assertion) : undefined;
        const api = tok?.status === 200 ? await call(recovery, r, base[r], 'notes', tok.body.access_token) : undefined;
        if (ready.status === 200 && api?.status === 200) recoveredAt[r] = performance.now() - resumedAt;
        else await sleep(200);
      }
    }
    // (A replica that died shows why in its stderr: an unhandled 'error' on a pg client did, before the fix.)
    const why = `${recovery.slice(-6).map(describeOutcome).join('\n')}\nA: ${a.stderr().slice(-1500)}\nB: ${b.stderr().slice(-1500)}`;
    expect(recoveredAt, why).toEqual({ A: expect.any(Number), B: expect.any(Number) });
    // The load loops see it too: whole iterations completed after the database returned.
    const tokensBeforeResume = tokens.filter((t) => t.at < resumedAt).length;
    while (tokens.length - tokensBeforeResume < 4 && performance.now() - resumedAt < 20_000) await sleep(50);
    stop = true;
    await load;
    expect(tokens.length - tokensBeforeResume, 'load iterations after the outage').toBeGreaterThanOrEqual(4);

    const all = [...log, ...probes, ...recovery];
    // Never a 5xx other than 503, never a dropped connection, never a slow answer, in any phase.
    expect(all.filter((o) => o.status === 'error' || (o.status >= 500 && o.status !== 503)).map(describeOutcome)).toEqual([]);
    expect(all.filter((o) => o.ms > REQUEST_BOUND_MS).map(describeOutcome)).toEqual([]);
    // Every 503 says when to come back, in JSON.
    const unavailable = all.filter((o) => o.status === 503);
    for (const o of unavailable) {
      expect(o.retryAfter, describeOutcome(o)).toMatch(/^\d+$/);
      expect(o.contentType, describeOutcome(o)).toMatch(/^application\/json/);
      expect(o.body.retry_after ?? o.body.error, describeOutcome(o)).toBeDefined();
    }

    // During the outage (after a moment for the replicas to notice the dropped connections): every
    // request that needs the database is a 503 temporarily_unavailable, on both replicas.
    const during = (o: Outcome) => o.startedAt > cutAt + 500 && o.endedAt < resumedAt;
    const needingDb = all.filter((o) => during(o) && ['register', 'exchange', 'notes'].includes(o.step));
    for (const r of ['A', 'B'] as const) expect(needingDb.filter((o) => o.replica === r).length, `requests to ${r} during the outage`).toBeGreaterThanOrEqual(5);
    for (const o of needingDb) {
      expect(o.status, describeOutcome(o)).toBe(503);
      expect(o.body.error, describeOutcome(o)).toBe('temporarily_unavailable');
    }
    const readiness = probes.filter((o) => during(o) && o.step === 'readyz');
    for (const r of ['A', 'B'] as const) expect(readiness.filter((o) => o.replica === r).length).toBeGreaterThanOrEqual(5);
    for (const o of readiness) {
      expect(o.status, describeOutcome(o)).toBe(503);
      expect(o.body).toEqual({ status: 'unavailable', store: 'postgres', retry_after: 1 });
    }
    // Liveness never depends on the database: a load balancer must not restart a replica for an outage.
    const liveness = probes.filter((o) => o.step === 'healthz');
    expect(liveness.length).toBeGreaterThanOrEqual(10);
    for (const o of liveness) expect(o.status, describeOutcome(o)).toBe(200);

    // Nothing acknowledged before the outage was lost: each token works on both replicas, each assertion still exchanges.
    await eachLimited(acknowledgedBefore, 4, async ({ token, assertion }) => {
      for (const where of [a.url, b.url]) {
        expect((await notes(where, token)).status).toBe(200);
        expect((await notes(where, (await exchange(where, assertion)).access_token)).status).toBe(200);
      }
    });
    await link.cut();
    // Neither replica was restarted: the same processes, and they still stop cleanly (the database is gone again, which must not stop a shutdown).
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  }, 60_000);
});
