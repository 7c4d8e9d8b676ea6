import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, onTestFinished } from 'vitest';
import {
  createMemoryStore,
  createPostgresStore,
  createService,
  createSqliteStore,
  nodeMiddleware,
  silentLogger,
  writeRefusal,
  type AuthmdService,
  type ServiceOptions,
  type Store,
} from '@authmd/service';
import { createTestDatabase, testDatabasePool, type LeasedDatabase, type TestDatabasePool } from '../../../../test-support/postgres.ts';

/** A clock tests move by hand: expiry is tested without sleeping. */
const UNLIMITED = { perIp: 1_000_000, perService: 1_000_000 };

export interface TestClock {
  (): number;
  advance(ms: number): void;
}

export function testClock(start = Date.UTC(2026, 10, 28, 12, 0, 0)): TestClock {
  let now = start;
  return Object.assign(() => now, { advance: (ms: number) => void (now += ms) });
}

export interface RunningService {
  base: string;
  service: AuthmdService;
  clock: TestClock;
  server: Server;
  close(): Promise<void>;
}

export type HarnessOptions = Partial<Omit<ServiceOptions, 'issuer'>> & {
  /** Extra protected resources under the base URL, by path (e.g. '/admin'). */
  extraResources?: string[];
  /** The service's resources are these paths under the base URL, the first the default, and not the base URL itself. */
  resourcePaths?: string[];
  /**
   * Which store to run on when `store` is not given (a given `store` always wins). Default:
   * AUTHMD_TEST_BACKEND (set by Vitest's `postgres` and `sqlite` projects, vitest.config.ts), else
   * memory. `postgres` gets a database of its own with no rows: from `databases` when given (handed
   * back emptied on close), else a fresh one, dropped when the service closes.
   */
  backend?: Backend;
  /** Where `postgres` services get their databases (`servicePerTest` passes one pool per file). */
  databases?: TestDatabasePool;
  /** The issuer, when it is not this server's own base URL: replicas of one service share one. */
  issuer?: string;
};

export type Backend = 'memory' | 'sqlite' | 'postgres';

/**
 * Whether this is a suite's first run. Vitest runs some suites again with every service on another
 * store (its `postgres` and `sqlite` projects, AUTHMD_TEST_BACKEND): a test that names its own stores
 * would run the same again there, so such a test is defined in the first run only.
 */
export const FIRST_RUN = !process.env.AUTHMD_TEST_BACKEND;

function backendFromEnv(): Backend {
  const value = process.env.AUTHMD_TEST_BACKEND;
  if (value === undefined || value === '') return 'memory';
  if (value === 'memory' || value === 'sqlite' || value === 'postgres') return value;
  throw new Error(`AUTHMD_TEST_BACKEND must be memory, sqlite or postgres, not ${JSON.stringify(value)}`);
}

/**
 * Starts a real service on 127.0.0.1 (ephemeral port) with a sample API:
 * `GET /api/notes` needs notes.read, `POST /api/notes` needs notes.write, and each extra resource
 * path answers `GET <path>/ping` with its own resource binding.
 */
/**
 * Resolves once the store's invalidation channel is live. A PostgreSQL store connects its LISTEN in
 * the background and, once it is up, clears every cache (messages may have been missed before): a
 * test that counts key-set fetches or key imports must start after that, not race it.
 */
async function untilListening(store: Store): Promise<void> {
  const probe = store.subscribe?.('harness.listening', () => {});
  if (!probe) return;
  try {
    for (const deadline = Date.now() + 10_000; !probe.live; await new Promise((resolve) => setTimeout(resolve, 10))) {
      if (Date.now() > deadline) throw new Error('the store\'s LISTEN connection did not come up within 10 s');
    }
  } finally {
    probe.close();
  }
}

export async function startService(options: HarnessOptions = {}): Promise<RunningService> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clock = testClock();
  const { extraResources = [], resourcePaths, backend = backendFromEnv(), issuer = base, databases, ...serviceOptions } = options;
  let database: LeasedDatabase | undefined;
  if (backend === 'postgres' && !serviceOptions.store) {
    if (databases) database = await databases.lease();
    else {
      const fresh = await createTestDatabase();
      database = { url: fresh.url, release: fresh.drop };
    }
  }
  const store =
    serviceOptions.store ??
    (database
      ? createPostgresStore({ connectionString: database.url })
      : backend === 'sqlite'
        ? createSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'authmd-')), 'authmd.db') })
        : createMemoryStore());
  const service = await createService({
    issuer,
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    resources: resourcePaths ? resourcePaths.map((path) => issuer + path) : extraResources.length ? [issuer, ...extraResources.map((path) => issuer + path)] : undefined,
    store,
    logger: silentLogger,
    clock,
    maintenanceIntervalSeconds: 0,
    // Every test registers from 127.0.0.1; the profile's defaults are tested where they are the subject.
    rateLimits: { anonymous: UNLIMITED, service_auth: UNLIMITED },
    limits: { signInCodesPerIpPerHour: 1_000_000 },
    mail: { outbox: true },
    ...serviceOptions,
  });
  if (database) await untilListening(store);
  const read = service.protect({ scopes: ['notes.read'] });
  const write = service.protect({ scopes: ['notes.write'] });
  const extraGuards = new Map(extraResources.map((path) => [`${path}/ping`, service.protect({ resource: issuer + path })]));
  const middleware = nodeMiddleware(service);

  server.on('request', (req, res) =>
    middleware(req, res, async () => {
      const path = URL.canParse(req.url ?? '/', base) ? new URL(req.url ?? '/', base).pathname : '';
      const guard = path === '/api/notes' ? (req.method === 'POST' ? write : read) : extraGuards.get(path);
      if (!guard) {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        return res.end('{"error":"not_found"}');
      }
      const outcome = await guard.check(req.headers.authorization);
      if (!outcome.ok) return writeRefusal(res, outcome.refusal);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ principal: outcome.principal }));
    }),
  );

  return {
    base,
    service,
    clock,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
      await database?.release();
    },
  };
}

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

export function postForm(url: string, fields: Record<string, string> | string, headers: Record<string, string> = {}): Promise<Response> {
  const body = typeof fields === 'string' ? fields : new URLSearchParams(fields).toString();
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
}

export async function registerAnonymous(base: string): Promise<Record<string, any>> {
  const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
  if (response.status !== 200) throw new Error(`registration failed: ${response.status} ${await response.text()}`);
  return response.json();
}

export async function exchange(base: string, assertion: string, extra: Record<string, string> = {}): Promise<Response> {
  return postForm(`${base}/oauth2/token`, { grant_type: JWT_BEARER, assertion, ...extra });
}

/** Exchanges an assertion that must work, and returns the access token. */
export async function accessTokenFor(base: string, assertion: string): Promise<string> {
  const response = await exchange(base, assertion);
  if (response.status !== 200) throw new Error(`exchange failed: ${response.status} ${await response.text()}`);
  return (await response.json()).access_token;
}

/**
 * For a test file: a `start` that runs a service and closes it after each test. Its PostgreSQL
 * services share a pool of databases, dropped after the file.
 */
export function servicePerTest(): (options?: HarnessOptions) => Promise<RunningService> {
  let started: RunningService[] = [];
  const databases = testDatabasePool();
  afterEach(async () => {
    await Promise.all(started.map((running) => running.close()));
    started = [];
  });
  afterAll(() => databases.close());
  return async (options) => {
    const running = await startService({ databases, ...options });
    started.push(running);
    return running;
  };
}

export async function accessToken(base: string, extra: Record<string, string> = {}): Promise<{ token: string; registration: Record<string, any> }> {
  const registration = await registerAnonymous(base);
  const response = await exchange(base, registration.identity.assertion, extra);
  if (response.status !== 200) throw new Error(`exchange failed: ${response.status} ${await response.text()}`);
  return { token: (await response.json()).access_token, registration };
}

export function callApi(base: string, token?: string, init: RequestInit = {}, path = '/api/notes'): Promise<Response> {
  return fetch(base + path, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } });
}

/**
 * For one test: a maker of stores that share one place (a SQLite file, a PostgreSQL database), as
 * replicas of one service do. The PostgreSQL database is dropped when the test has finished.
 */
export async function sharedStore(backend: 'sqlite' | 'postgres'): Promise<() => Store> {
  if (backend === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'authmd-shared-')), 'authmd.db');
    return () => createSqliteStore({ path });
  }
  const database = await createTestDatabase();
  onTestFinished(() => database.drop());
  return () => createPostgresStore({ connectionString: database.url });
}
