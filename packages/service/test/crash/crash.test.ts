/**
 * Crash test: a real service process on SQLite is SIGKILLed in the middle of a stream of
 * registrations, exchanges and revocations, restarted on the same file and port, and must honour
 * everything it acknowledged before dying:
 * - every acknowledged registration's assertion still exchanges (200);
 * - every acknowledged access token still works on the API (200), unless its revocation was
 *   acknowledged, in which case it stays refused (401);
 * - the database passes `PRAGMA integrity_check`.
 *
 * "Acknowledged" means a 200 response received in full. Requests cut off by the kill are ignored,
 * except revocations: a revocation whose answer was lost leaves its token undecided, and the first
 * check after the restart decides it (200 or 401 are both fine, but later checks must agree).
 *
 * Several kill rounds run against the same file; after each restart everything acknowledged in every
 * round so far is checked again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

const SERVER_SCRIPT = fileURLToPath(new URL('./crash-server.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const KILL_ROUNDS = 3;
const WORKERS = 8;
/** A round is killed once this many registrations were acknowledged in it, after a further random delay. */
const MIN_REGISTRATIONS_PER_ROUND = 50;
const KILL_DELAY_MS: [number, number] = [300, 800];
/** Share of fresh tokens a worker revokes right after getting them. */
const REVOKE_OWN = 1 / 3;
/** Chance per iteration (from round 2 on) of revoking a live token acknowledged in an earlier round. */
const REVOKE_OLDER = 0.15;
const VERIFY_CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// What the clients saw acknowledged

type TokenState = 'live' | 'revoking' | 'revoked' | 'undecided';

interface AckedRegistration {
  id: string;
  assertion: string;
  round: number;
}

interface AckedToken {
  value: string;
  registrationId: string;
  round: number;
  state: TokenState;
}

interface RoundStats {
  round: number;
  registrations: number;
  tokens: number;
  revocations: number;
  olderRevocations: number;
  cutOff: number;
  undecidedRevocations: number;
  killedAfterMs: number;
}

interface VerifyStats {
  afterRound: number;
  registrationsExchanged: number;
  liveTokensOk: number;
  revokedTokensRefused: number;
  undecidedResolvedLive: number;
  undecidedResolvedRevoked: number;
}

// ---------------------------------------------------------------------------------------------
// A small HTTP client: node:http with one keep-alive agent per server incarnation, so that no
// pooled socket of a dead server is ever reused.

interface HttpResult {
  status: number;
  body: string;
}

function send(agent: Agent, base: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest(
      new URL(path, base),
      {
        method,
        agent,
        headers: { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
        res.on('end', () => {
          // Only a response received in full counts: a body cut off by the kill is not an answer.
          if (!res.complete) return reject(new Error('response incomplete'));
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request timed out after ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Thrown for a complete response that is not what a healthy service answers: never expected. */
class UnexpectedResponse extends Error {
  override readonly name = 'UnexpectedResponse';
}

function expectJson(result: HttpResult, what: string): Record<string, any> {
  if (result.status !== 200) throw new UnexpectedResponse(`${what}: ${result.status} ${result.body.slice(0, 300)}`);
  try {
    return JSON.parse(result.body) as Record<string, any>;
  } catch {
    throw new UnexpectedResponse(`${what}: 200 with a body that is not JSON: ${result.body.slice(0, 300)}`);
  }
}

const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

function register(agent: Agent, base: string): Promise<HttpResult> {
  return send(agent, base, 'POST', '/agent/identity', { headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' });
}

function exchange(agent: Agent, base: string, assertion: string): Promise<HttpResult> {
  return send(agent, base, 'POST', '/oauth2/token', form({ grant_type: JWT_BEARER, assertion }));
}

function revoke(agent: Agent, base: string, token: string): Promise<HttpResult> {
  return send(agent, base, 'POST', '/oauth2/revoke', form({ token }));
}

function callApi(agent: Agent, base: string, token: string): Promise<HttpResult> {
  return send(agent, base, 'GET', '/api/notes', { headers: { authorization: `Bearer ${token}` } });
}

// ---------------------------------------------------------------------------------------------
// The server child

interface Incarnation {
  child: ChildProcess;
  base: string;
  agent: Agent;
  exited: Promise<void>;
  stderr: () => string;
}

const children = new Set<ChildProcess>();

function startServer(dbPath: string, port: number): Promise<Incarnation> {
  const child = spawn(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', SERVER_SCRIPT, dbPath, String(port)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  children.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => void (stderr += chunk));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );

  return new Promise<Incarnation>((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`the server printed no READY line within ${READY_TIMEOUT_MS} ms; stderr:\n${stderr}`)), READY_TIMEOUT_MS);
    child.once('exit', (code, signal) => fail(new Error(`the server exited before READY (code ${code}, signal ${signal}); stderr:\n${stderr}`)));
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const ready = /^READY (\S+)$/m.exec(stdout);
      if (!ready || settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ child, base: ready[1]!, agent: new Agent({ keepAlive: true, maxSockets: 32 }), exited, stderr: () => stderr });
    });
  });
}

async function crash(server: Incarnation): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
  expect(server.child.signalCode, `the server died on its own before the kill; stderr:\n${server.stderr()}`).toBe('SIGKILL');
  server.agent.destroy();
}

/** A port below the ephemeral range (so no client socket can take it between a kill and the restart). */
async function pickPort(): Promise<number> {
  let low = 32_768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // not Linux: keep the usual default
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = low > 12_000 ? 10_000 + Math.floor(Math.random() * (low - 11_000)) : 0;
    const port = await new Promise<number | undefined>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(undefined));
      probe.listen(candidate, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    if (port) return port;
  }
  throw new Error('found no free port');
}

async function startOnPort(dbPath: string, port: number): Promise<Incarnation> {
  // The port was free a moment ago and nothing else should take it; retry briefly in case the
  // previous incarnation's socket is still being torn down.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServer(dbPath, port);
    } catch (error) {
      if (attempt >= 5 || !/EADDRINUSE/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** mulberry32: reproducible choices for a given seed (timing is not reproducible, of course). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------

describe('crash safety on SQLite', () => {
  const dirs: string[] = [];

  afterEach(async () => {
    for (const child of [...children]) {
      child.kill('SIGKILL');
      await new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    }
    children.clear();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it(
    `keeps every acknowledged registration, token and revocation across ${KILL_ROUNDS} SIGKILLs`,
    async () => {
      const seed = Number(process.env.AUTHMD_CRASH_SEED ?? Date.now() % 2 ** 31);
      const random = prng(seed);
      const context = `(seed ${seed}; rerun with AUTHMD_CRASH_SEED=${seed})`;
      const dir = mkdtempSync(join(tmpdir(), 'authmd-crash-'));
      dirs.push(dir);
      const dbPath = join(dir, 'authmd.db');
      const port = await pickPort();

      const registrations: AckedRegistration[] = [];
      const tokens: AckedToken[] = [];
      const unexpected: string[] = [];
      const rounds: RoundStats[] = [];
      const verifications: VerifyStats[] = [];
      let verificationExchanges = 0;

      let server = await startOnPort(dbPath, port);
      expect(server.base).toBe(`http://127.0.0.1:${port}`);

      for (let round = 1; round <= KILL_ROUNDS; round++) {
        // --- the stream, until the kill -----------------------------------------------------
        const stats: RoundStats = { round, registrations: 0, tokens: 0, revocations: 0, olderRevocations: 0, cutOff: 0, undecidedRevocations: 0, killedAfterMs: 0 };
        let killed = false;
        const { agent, base } = server;
        const olderLive = tokens.filter((t) => t.state === 'live');

        /** Runs one request; false when it was cut off by the kill (not acknowledged). */
        const attempt = async <T>(what: string, f: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> => {
          try {
            return { ok: true, value: await f() };
          } catch (error) {
            if (error instanceof UnexpectedResponse || !killed) unexpected.push(`round ${round}, ${what}: ${String(error)}`);
            else stats.cutOff += 1;
            return { ok: false };
          }
        };

        const revokeTracked = async (token: AckedToken, older: boolean): Promise<boolean> => {
          token.state = 'revoking';
          const result = await attempt('revoke', async () => {
            const response = await revoke(agent, base, token.value);
            if (response.status !== 200) throw new UnexpectedResponse(`revoke: ${response.status} ${response.body.slice(0, 300)}`);
          });
          if (result.ok) {
            token.state = 'revoked';
            if (older) stats.olderRevocations += 1;
            else stats.revocations += 1;
          } else {
            token.state = 'undecided';
            stats.undecidedRevocations += 1;
          }
          return result.ok;
        };

        const worker = async () => {
          while (!killed && unexpected.length === 0) {
            const registered = await attempt('register', async () => expectJson(await register(agent, base), 'register'));
            if (!registered.ok) return;
            const body = registered.value;
            if (typeof body.id !== 'string' || typeof body.identity?.assertion !== 'string') {
              unexpected.push(`round ${round}, register: no id or identity.assertion in ${JSON.stringify(body).slice(0, 300)}`);
              return;
            }
            registrations.push({ id: body.id, assertion: body.identity.assertion, round });
            stats.registrations += 1;

            const exchanged = await attempt('exchange', async () => expectJson(await exchange(agent, base, body.identity.assertion), 'exchange'));
            if (!exchanged.ok) return;
            if (typeof exchanged.value.access_token !== 'string') {
              unexpected.push(`round ${round}, exchange: no access_token in ${JSON.stringify(exchanged.value).slice(0, 300)}`);
              return;
            }
            const token: AckedToken = { value: exchanged.value.access_token, registrationId: body.id, round, state: 'live' };
            tokens.push(token);
            stats.tokens += 1;

            if (random() < REVOKE_OWN && !(await revokeTracked(token, false))) return;

            if (round > 1 && random() < REVOKE_OLDER) {
              // A token acknowledged before an earlier crash, revoked after it.
              const candidates = olderLive.filter((t) => t.state === 'live');
              const older = candidates[Math.floor(random() * candidates.length)];
              if (older && !(await revokeTracked(older, true))) return;
            }
          }
        };

        const started = Date.now();
        const workers = Array.from({ length: WORKERS }, worker);
        const deadline = started + 20_000;
        while (stats.registrations < MIN_REGISTRATIONS_PER_ROUND && unexpected.length === 0) {
          if (Date.now() > deadline) throw new Error(`round ${round}: only ${stats.registrations} registrations in 20 s ${context}`);
          await sleep(5);
        }
        await sleep(KILL_DELAY_MS[0] + Math.floor(random() * (KILL_DELAY_MS[1] - KILL_DELAY_MS[0])));
        killed = true;
        stats.killedAfterMs = Date.now() - started;
        await crash(server);
        await Promise.all(workers);
        expect(unexpected, `unexpected answers during round ${round} ${context}`).toEqual([]);
        rounds.push(stats);

        // --- restart on the same file and port, then check everything acknowledged so far -----
        server = await startOnPort(dbPath, port);
        expect(server.base).toBe(`http://127.0.0.1:${port}`);
        const verify: VerifyStats = {
          afterRound: round,
          registrationsExchanged: 0,
          liveTokensOk: 0,
          revokedTokensRefused: 0,
          undecidedResolvedLive: 0,
          undecidedResolvedRevoked: 0,
        };
        const failures: string[] = [];
        const check = { agent: server.agent, base: server.base };

        await inPool(registrations, VERIFY_CONCURRENCY, async (registration) => {
          const response = await exchange(check.agent, check.base, registration.assertion);
          if (response.status === 200 && typeof JSON.parse(response.body).access_token === 'string') {
            verify.registrationsExchanged += 1;
            verificationExchanges += 1;
          }
          else failures.push(`registration ${registration.id} (round ${registration.round}) no longer exchanges: ${response.status} ${response.body.slice(0, 200)}`);
        });

        await inPool(tokens, VERIFY_CONCURRENCY, async (token) => {
          const response = await callApi(check.agent, check.base, token.value);
          const label = `token of ${token.registrationId} (round ${token.round}, ${token.state})`;
          if (token.state === 'live') {
            if (response.status === 200 && JSON.parse(response.body).principal?.registrationId === token.registrationId) verify.liveTokensOk += 1;
            else failures.push(`${label} no longer works: ${response.status} ${response.body.slice(0, 200)}`);
          } else if (token.state === 'revoked') {
            if (response.status === 401) verify.revokedTokensRefused += 1;
            else failures.push(`${label} works again after an acknowledged revocation: ${response.status} ${response.body.slice(0, 200)}`);
          } else if (token.state === 'undecided') {
            // The revocation was cut off: committed or not, either answer is fine, but from now on it must stay so.
            if (response.status === 200) {
              token.state = 'live';
              verify.undecidedResolvedLive += 1;
            } else if (response.status === 401) {
              token.state = 'revoked';
              verify.undecidedResolvedRevoked += 1;
            } else {
              failures.push(`${label}: ${response.status} ${response.body.slice(0, 200)}`);
            }
          } else {
            failures.push(`${label}: still marked revoking after the round ended (test bug)`);
          }
        });

        expect(failures.slice(0, 20), `after restart ${round}: ${failures.length} failures ${context}`).toEqual([]);
        expect(verify.registrationsExchanged).toBe(registrations.length);
        verifications.push(verify);
      }

      // --- a last crash, then the file itself ----------------------------------------------------
      await crash(server);
      expect(existsSync(dbPath)).toBe(true);
      const db = new Database(dbPath, { readonly: true, fileMustExist: true });
      try {
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        const known = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM registrations WHERE id = ?');
        const missing = registrations.filter((r) => known.get(r.id)!.n !== 1).map((r) => r.id);
        expect(missing, `acknowledged registrations missing from the file ${context}`).toEqual([]);
        const tokenRows = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM access_tokens').get()!.n;
        expect(tokenRows).toBeGreaterThanOrEqual(tokens.length + verificationExchanges);
      } finally {
        db.close();
      }

      const summary = {
        seed,
        rounds,
        verifications,
        totals: {
          registrations: registrations.length,
          tokens: tokens.length,
          revoked: tokens.filter((t) => t.state === 'revoked').length,
          live: tokens.filter((t) => t.state === 'live').length,
        },
      };
      console.log(`crash test summary: ${JSON.stringify(summary, null, 2)}`);
      expect(rounds).toHaveLength(KILL_ROUNDS);
      for (const r of rounds) expect(r.registrations).toBeGreaterThanOrEqual(MIN_REGISTRATIONS_PER_ROUND);
    },
    TEST_TIMEOUT_MS,
  );
});
