import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore, table, type Store } from '@authmd/service';
import { JWT_BEARER, startService, type RunningService } from '../support/harness.ts';

/**
 * The SQLite write-ahead log stays bounded under sustained writes. A checkpoint that never blocks
 * writers cannot reset the WAL while writes keep coming, and it grew by hundreds of MB in seconds.
 * This runs a real service on a SQLite file over real HTTP on 127.0.0.1: jwt-bearer exchanges from
 * one registered agent (a transaction per exchange) and a flood of `POST /login` posts refused by the
 * sign-in limits (counter writes per post), 16 requests in flight over keep-alive connections, while
 * the size of the `-wal` file is sampled throughout. The run is long enough only if its commits, at
 * one 4 KiB page each at the very least, would have grown a WAL that never starts over past the
 * limit: it goes on until they would have grown it to twice the limit (at most 20 s), and the test
 * checks that they would at least have passed it.
 */

/** The longest the load runs; it stops sooner once its commits have written FRAMES_WANTED. */
const MAX_LOAD_MS = 20_000;
const IN_FLIGHT_EXCHANGES = 10;
const IN_FLIGHT_LOGINS = 6;
const WAL_LIMIT = 64 * 1024 * 1024;
const MiB = 1024 * 1024;
/** What a commit writes to the WAL at the very least: one page frame (4 KiB and a 24-byte header). */
const MIN_FRAME_BYTES = 4096 + 24;
/** Frames enough to take a WAL that never starts over to twice the limit. */
const FRAMES_WANTED = Math.ceil((2 * WAL_LIMIT) / MIN_FRAME_BYTES);

let running: RunningService | undefined;
let store: Store | undefined;
let reader: Database.Database | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (reader?.inTransaction) reader.exec('ROLLBACK');
  reader?.close();
  reader = undefined;
  await running?.close();
  running = undefined;
  await store?.close();
  store = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls `ok` every 20 ms; fails after `ms`. */
async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(agent: Agent, base: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function walBytes(path: string): number {
  try {
    return statSync(`${path}-wal`).size;
  } catch {
    return 0; // not created yet, or removed at close
  }
}

describe('the SQLite write-ahead log', () => {
  it(
    'stays under 64 MiB through jwt-bearer exchanges and refused sign-ins on 16 connections that commit twice that in frames',
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'authmd-wal-'));
      const path = join(dir, 'authmd.db');
      running = await startService({ store: createSqliteStore({ path }) });
      const { base } = running;
      const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT_EXCHANGES + IN_FLIGHT_LOGINS });

      // One agent, registered anonymously; its assertion is exchanged again and again.
      const registered = await send(agent, base, 'POST', '/agent/identity', JSON.stringify({ type: 'anonymous' }), { 'content-type': 'application/json' });
      expect(registered.status, registered.body).toBe(200);
      const assertion: string = JSON.parse(registered.body).identity.assertion;
      const exchangeBody = new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString();

      // The sign-in form: its CSRF cookie and field, so each post gets as far as the sign-in limits.
      const form = await send(agent, base, 'GET', '/login');
      expect(form.status).toBe(200);
      const csrfCookie = ([] as string[]).concat(form.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]!).find((c) => c.startsWith('authmd_csrf='));
      const csrfField = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1];
      expect(csrfCookie).toBeDefined();
      expect(csrfField).toBeDefined();
      const loginBody = new URLSearchParams({ csrf: csrfField!, email: 'flood@example.com', return_to: '/' }).toString();
      const loginHeaders = { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie! };

      const statuses = { exchange: new Map<number, number>(), login: new Map<number, number>() };
      const count = (m: Map<number, number>, status: number) => m.set(status, (m.get(status) ?? 0) + 1);
      const samples: number[] = [];
      const sampler = setInterval(() => samples.push(walBytes(path)), 100);

      const started = Date.now();
      const end = started + MAX_LOAD_MS;
      // Each exchange and each refused sign-in is a commit of at least one frame.
      const going = () => Date.now() < end && (statuses.exchange.get(200) ?? 0) + (statuses.login.get(429) ?? 0) < FRAMES_WANTED;
      const exchanges = async () => {
        while (going()) {
          const answer = await send(agent, base, 'POST', '/oauth2/token', exchangeBody, { 'content-type': 'application/x-www-form-urlencoded' });
          count(statuses.exchange, answer.status);
          if (answer.status === 200 && !JSON.parse(answer.body).access_token) throw new Error('a 200 without an access token');
        }
      };
      const logins = async () => {
        while (going()) count(statuses.login, (await send(agent, base, 'POST', '/login', loginBody, loginHeaders)).status);
      };
      try {
        await Promise.all([...Array.from({ length: IN_FLIGHT_EXCHANGES }, exchanges), ...Array.from({ length: IN_FLIGHT_LOGINS }, logins)]);
      } finally {
        clearInterval(sampler);
        agent.destroy();
      }
      const seconds = (Date.now() - started) / 1000;
      samples.push(walBytes(path));

      const issued = statuses.exchange.get(200) ?? 0;
      const refused = statuses.login.get(429) ?? 0;
      const max = Math.max(...samples);
      console.log(
        `WAL bound: ${seconds.toFixed(1)} s, ${issued} tokens issued (${(issued / seconds).toFixed(0)}/s), ` +
          `${refused} sign-ins refused (${(refused / seconds).toFixed(0)}/s), ${samples.length} samples, ` +
          `WAL max ${(max / MiB).toFixed(1)} MiB, last ${(samples.at(-1)! / MiB).toFixed(1)} MiB; ` +
          `exchange statuses ${JSON.stringify([...statuses.exchange])}, login statuses ${JSON.stringify([...statuses.login])}`,
      );

      // The load was real: every exchange worked, and past the first few codes every sign-in was
      // refused by a sign-in limit (and counted, a write), both in volume.
      const codesSent = statuses.login.get(200) ?? 0;
      expect([...statuses.exchange.keys()]).toEqual([200]);
      expect([...statuses.login.keys()].sort()).toEqual([200, 429]);
      expect(codesSent).toBeLessThanOrEqual(5);
      expect(issued).toBeGreaterThan(20 * seconds);
      expect(refused).toBeGreaterThan(20 * seconds);
      expect(samples.length).toBeGreaterThan(seconds);
      expect(max).toBeGreaterThan(0);
      expect(max).toBeLessThan(WAL_LIMIT);
      // Each exchange and each refused sign-in commits at least one page frame.
      expect((issued + refused) * MIN_FRAME_BYTES, 'the load wrote less than the limit: it proves nothing').toBeGreaterThan(WAL_LIMIT);

      // Nothing was lost on the way: every token issued, and its audit event, is in the database.
      await running.close();
      running = undefined;
      expect(walBytes(path)).toBe(0); // a clean close checkpoints and removes the WAL
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM access_tokens').get()).toEqual({ n: issued });
        expect(db.prepare(`SELECT count(*) AS n FROM audit_events WHERE type = 'token.issued'`).get()).toEqual({ n: issued });
        expect(db.prepare('SELECT count(*) AS n FROM sign_ins').get()).toEqual({ n: codesSent });
      } finally {
        db.close();
      }
    },
    120_000,
  );
});

describe('the WAL limits of the SQLite store', () => {
  const blobs = table<{ id: string; body: string }>({ name: 'blobs', key: 'id', columns: { id: 'text', body: 'text' } });
  const RESTART = 256 * 1024;
  const MAX = 1024 * 1024;
  /** What the writers can add between two looks of the checkpointer (every 10 ms) on a busy machine. */
  const SLACK = 1024 * 1024;

  it(
    'starts the WAL over past walRestartBytes; past walMaxBytes, writes wait for a reader that pins it, and go on once it leaves',
    async () => {
      dir = mkdtempSync(join(tmpdir(), 'authmd-wal-'));
      const path = join(dir, 'store.db');
      store = createSqliteStore({ path, walRestartBytes: RESTART, walMaxBytes: MAX, lockTimeoutMs: 60_000 });
      await store.migrate([blobs]);
      const body = 'x'.repeat(1500);
      let written = 0;
      let failed: unknown;
      let max = 0;
      let stop = false;
      let grown = false;
      let startedOver = 0;
      const sampler = setInterval(() => {
        const bytes = walBytes(path);
        max = Math.max(max, bytes);
        if (bytes > RESTART) grown = true;
        else if (grown) [grown, startedOver] = [false, startedOver + 1]; // a WAL started over is truncated back to walRestartBytes
      }, 5);
      // Four writers, each a row at a time (a commit each), a short pause between rows so that little
      // is written between two looks of the checkpointer at the WAL, even on a busy machine.
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          try {
            if (i % 2) await store!.insert(blobs, { id: `${w}-${i}`, body });
            else await store!.transaction((tx) => tx.insert(blobs, { id: `${w}-${i}`, body }));
            written++;
          } catch (error) {
            failed = error;
            return;
          }
          await sleep(2);
        }
      });
      try {
        // Without other readers the WAL is started over whenever it passes walRestartBytes. (Before
        // the worker is up, it can grow further.) Over 3000 more rows, about 20 MB of WAL frames
        // (table and key index pages), it stays near that size.
        await until('the WAL is started over', () => startedOver > 0 || failed !== undefined);
        max = 0;
        const before = written;
        const resetsBefore = startedOver;
        await until('3000 more rows are written', () => written >= before + 3000 || failed !== undefined);
        expect(failed).toBeUndefined();
        const freeMax = max;
        expect(startedOver - resetsBefore).toBeGreaterThanOrEqual(5);
        expect(freeMax).toBeGreaterThan(RESTART);
        expect(freeMax).toBeLessThan(MAX + SLACK);

        // Another connection reads an old snapshot: no checkpoint can reset the WAL past it.
        reader = new Database(path, { readonly: true });
        reader.exec('BEGIN');
        const pinned = (reader.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
        expect(pinned).toBeGreaterThan(0);
        let last = written;
        let stillSince = Date.now();
        await until('the writes have stood still for 1 s', () => {
          if (written !== last) [last, stillSince] = [written, Date.now()];
          return failed !== undefined || Date.now() - stillSince >= 1000;
        });
        expect(failed).toBeUndefined();
        const held = written;
        expect(held).toBeGreaterThan(before + 3000);
        // The WAL went past the hard limit by at most what came in before the worker saw it.
        expect(walBytes(path)).toBeGreaterThanOrEqual(MAX);
        expect(max).toBeLessThan(MAX + SLACK);
        console.log(
          `WAL limits: ${startedOver - resetsBefore} resets over 3000 rows, WAL max ${(freeMax / 1024).toFixed(0)} KiB; ` +
            `pinned by a reader: writes held at ${(walBytes(path) / 1024).toFixed(0)} KiB, max ${(max / 1024).toFixed(0)} KiB`,
        );
        await sleep(300);
        expect(written).toBe(held); // still held, not failed
        expect(failed).toBeUndefined();

        // The reader leaves: the WAL is reset and the held writes go through.
        reader.exec('COMMIT');
        await until('writes go on', () => written >= held + 1000 || failed !== undefined);
        expect(failed).toBeUndefined();
        expect(walBytes(path)).toBeLessThan(MAX);
      } finally {
        stop = true;
        if (reader?.inTransaction) reader.exec('COMMIT'); // let held writers finish even when a check failed
        await Promise.all(writers);
        clearInterval(sampler);
      }
      expect(failed).toBeUndefined();

      // Every acknowledged row is there.
      await store.close();
      store = undefined;
      const db = new Database(path, { readonly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM blobs').get()).toEqual({ n: written });
      } finally {
        db.close();
      }
    },
    60_000,
  );
});
