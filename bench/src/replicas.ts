import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { grantTypes, paths } from '@authmd/protocol';
import { freePort } from '../../test-support/free-port.ts';
import { startServerChild, type ChildStats, type ServerChild } from './child.ts';
import { measureLoadSpread, type LoadSettings, type Request, type SpreadResult } from './load.ts';
import { createBenchDatabase, type BenchDatabase } from './postgres.ts';

/**
 * Issue 11: the service on PostgreSQL next to SQLite, one replica and two, and the revocation
 * visibility window across replicas. Every configuration runs the demo (bench/src/servers/demo-server.ts)
 * in its own process(es), on a fresh database (a new SQLite file, or a new `authmd_bench_<random>`
 * PostgreSQL database), started for each workload and stopped after it.
 *
 * Two replicas share one database, one public URL (replica A's address) and one key-encryption key,
 * as in docs/deployment.md. The load generator spreads the connections evenly: one autocannon
 * instance per replica, in parallel in this process, requests per second summed.
 */

export interface Configuration {
  name: string;
  database: 'sqlite' | 'postgres';
  replicas: 1 | 2;
  /** The PostgreSQL + Redis column (BENCH_REDIS_URL): passed to the demo as BENCH_DEMO_REDIS_URL. */
  redisUrl?: string;
}

export interface Workload {
  name: string;
  prepare(base: string): Promise<Request>;
}

export interface RunningConfiguration {
  servers: ServerChild[];
  database?: BenchDatabase;
  stop(): Promise<void>;
}

export const registrationRequest: Request = {
  method: 'POST',
  path: paths.identity,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'anonymous' }),
};

export function tokenRequest(assertion: string): Request {
  return {
    method: 'POST',
    path: paths.token,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString(),
  };
}

export function apiRequest(token: string): Request {
  return { path: '/api/notes', headers: { authorization: `Bearer ${token}` } };
}

export async function expectJson(base: string, request: Request): Promise<Record<string, any>> {
  const response = await fetch(base + request.path, { method: request.method ?? 'GET', headers: request.headers, body: request.body });
  if (!response.ok) throw new Error(`${request.method ?? 'GET'} ${request.path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

export async function obtainAssertion(base: string): Promise<string> {
  return (await expectJson(base, registrationRequest)).identity.assertion;
}

export async function obtainToken(base: string, exchangeAt = base): Promise<string> {
  return (await expectJson(exchangeAt, tokenRequest(await obtainAssertion(base)))).access_token;
}

/** How many registrations the "many assertions" exchange spreads over. */
const ASSERTIONS = 256;

export const workloads: Workload[] = [
  { name: 'anonymous registration', prepare: async () => registrationRequest },
  { name: 'jwt-bearer exchange', prepare: async (base) => tokenRequest(await obtainAssertion(base)) },
  {
    // The exchange above sends one assertion, so every request reads (on PostgreSQL: locks) the same
    // registration row; agents in numbers exchange their own. This one rotates over 256 registrations.
    name: `jwt-bearer exchange, ${ASSERTIONS} agents`,
    prepare: async (base) => {
      const assertions: string[] = [];
      for (let i = 0; i < ASSERTIONS; i += 16) assertions.push(...(await Promise.all(Array.from({ length: 16 }, () => obtainAssertion(base)))));
      const bodies = assertions.map((assertion) => tokenRequest(assertion).body!);
      return { ...tokenRequest(assertions[0]!), bodies };
    },
  },
  { name: 'protected API call', prepare: async (base) => apiRequest(await obtainToken(base)) },
];

const DEMO = 'bench/src/servers/demo-server.ts';

/**
 * Starts a configuration's server(s), on a fresh database; A first (it migrates and creates the keys),
 * then B. A start that fails (on a loaded machine, PostgreSQL's 2 s connect timeout can pass) is
 * tried again on a new database, up to three times, with a note on stderr.
 */
export async function startConfiguration(config: Configuration, root: string, profileDir: string | undefined, label = config.name): Promise<RunningConfiguration> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(config, root, profileDir, label);
    } catch (error) {
      if (attempt === 3) throw error;
      process.stderr.write(`  ${config.name} did not start (${String(error).split('\n', 1)[0]}); trying again\n`);
      await new Promise((resolve) => setTimeout(resolve, 3000 * attempt));
    }
  }
}

async function startOnce(config: Configuration, root: string, profileDir: string | undefined, label: string): Promise<RunningConfiguration> {
  const servers: ServerChild[] = [];
  const database = config.database === 'postgres' ? await createBenchDatabase() : undefined;
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await database?.drop();
  };
  try {
    const nodeArgs = (replica: string) => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, `${label}-${replica}`.replace(/\W+/g, '-'))}`] : []);
    if (!database) {
      servers.push(await startServerChild(DEMO, { cwd: root, nodeArgs: nodeArgs('a') }));
      return { servers, stop };
    }
    const port = await freePort();
    const shared = {
      BENCH_DEMO_DATABASE_URL: database.url,
      BENCH_DEMO_PUBLIC_URL: `http://127.0.0.1:${port}`,
      BENCH_DEMO_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      BENCH_DEMO_REDIS_URL: config.redisUrl,
    };
    servers.push(await startServerChild(DEMO, { cwd: root, nodeArgs: nodeArgs('a'), env: { ...shared, BENCH_DEMO_PORT: String(port) } }));
    if (config.replicas === 2) servers.push(await startServerChild(DEMO, { cwd: root, nodeArgs: nodeArgs('b'), env: { ...shared, BENCH_DEMO_PORT: '0' } }));
    return { servers, database, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export type CellResult = SpreadResult & {
  workload: string;
  configuration: string;
  /** PostgreSQL queries the server(s) sent per request during the measured run (every pg query, LISTEN/NOTIFY included). */
  queriesPerRequest?: number;
  /** The most frequent query shapes, per request. */
  queryShapes?: [string, number][];
  /** Server(s) plus database backends, CPU microseconds per request. */
  cpuMicrosPerRequest?: number;
};

/** Every child's counters added up; the HTTP requests under the key ''. */
function addStats(all: (ChildStats | undefined)[]): Map<string, number> | undefined {
  if (all.some((s) => s === undefined)) return undefined;
  const total = new Map<string, number>([['', 0]]);
  for (const stats of all) {
    total.set('', total.get('')! + stats!.requests);
    for (const [shape, n] of Object.entries(stats!.queries)) total.set(shape, (total.get(shape) ?? 0) + n);
  }
  return total;
}

/** One workload on one configuration: fresh servers and database, a warm-up, the measured run. */
export async function measureCell(workload: Workload, config: Configuration, settings: LoadSettings, root: string, profileDir: string | undefined): Promise<CellResult> {
  // Profiles (BENCH_PROFILE=1) go to one directory per workload, configuration and replica.
  const running = await startConfiguration(config, root, profileDir, `${workload.name} ${config.name}`);
  try {
    const [a] = running.servers;
    const request = await workload.prepare(a!.url);
    // One request by hand on each replica: a mistake shows here, not as thousands of non-2xx.
    for (const server of running.servers) await expectJson(server.url, request);
    let before: Map<string, number> | undefined;
    let after: Map<string, number> | undefined;
    const measured = await measureLoadSpread(
      running.servers.map((server) => ({ server, request })),
      settings,
      {
        databaseCpu: running.database ? () => running.database!.backendCpuSeconds() : undefined,
        beforeMeasured: running.database ? async () => void (before = addStats(await Promise.all(running.servers.map((s) => s.stats())))) : undefined,
        afterMeasured: running.database ? async () => void (after = addStats(await Promise.all(running.servers.map((s) => s.stats())))) : undefined,
      },
    );
    let queriesPerRequest: number | undefined;
    let queryShapes: [string, number][] | undefined;
    const requests = before && after ? after.get('')! - before.get('')! : 0;
    if (before && after && requests > 0) {
      after.delete('');
      const delta = [...after].map(([shape, n]) => [shape, (n - (before!.get(shape) ?? 0)) / requests] as [string, number]).filter(([, n]) => n > 0);
      queriesPerRequest = delta.reduce((a, [, n]) => a + n, 0);
      queryShapes = delta.sort((x, y) => y[1] - x[1]).slice(0, 12);
    }
    const cpu = measured.serverCpu === undefined ? undefined : measured.serverCpu + (measured.databaseCpu ?? 0);
    return {
      workload: workload.name,
      configuration: config.name,
      ...measured,
      queriesPerRequest,
      queryShapes,
      cpuMicrosPerRequest: cpu === undefined ? undefined : (cpu / measured.requestsPerSecond) * 1e6,
    };
  } finally {
    await running.stop();
  }
}

export interface RevocationResult {
  revocations: number;
  /** The RFC 7009 request on A, from sending to its answer (commit, broadcast and every replica's acknowledgement). */
  revokeP50Ms: number;
  revokeP99Ms: number;
  revokeMaxMs: number;
  /** B had validated (and cached) the token just before each revocation: B's answers to it then. */
  warmCallsOk: number;
  /** The call on B sent right after A answered the revocation: how many succeeded (must be 0). */
  directCallsSucceeded: number;
  /** Calls on B from a concurrent prober: sent after A's answer, and of those how many succeeded (must be 0). */
  proberCallsAfterAnswer: number;
  proberSucceededAfterAnswer: number;
  /** Prober calls sent while the revocation was in flight that succeeded (allowed: the revocation had not been answered). */
  proberSucceededInFlight: number;
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/**
 * `count` times: a fresh token (registered at `registerAt`, exchanged at `exchangeAt`), called twice
 * at `callAt` (so its cache holds it), revoked at `revokeAt` (RFC 7009), and called at `callAt` right
 * after the revocation's answer, while a prober keeps two more calls at `callAt` in flight throughout.
 */
async function revocationWindow(count: number, at: { registerAt: string; exchangeAt: string; revokeAt: string; callAt: string }): Promise<RevocationResult> {
  const call = (token: string) => fetch(at.callAt + '/api/notes', { headers: { authorization: `Bearer ${token}` } }).then(async (r) => (await r.arrayBuffer(), r.status));
  const latencies: number[] = [];
  const result = { warmCallsOk: 0, directCallsSucceeded: 0, proberCallsAfterAnswer: 0, proberSucceededAfterAnswer: 0, proberSucceededInFlight: 0 };
  for (let i = 0; i < count; i++) {
    const token = await obtainToken(at.registerAt, at.exchangeAt);
    if ((await call(token)) === 200 && (await call(token)) === 200) result.warmCallsOk += 1;
    let probing = true;
    const calls: { sent: number; status: number }[] = [];
    const prober = async () => {
      while (probing) {
        const sent = performance.now();
        calls.push({ sent, status: await call(token) });
      }
    };
    const probers = [prober(), prober()];
    const sent = performance.now();
    const revoked = await fetch(at.revokeAt + paths.revoke, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    await revoked.arrayBuffer();
    const answered = performance.now();
    if (revoked.status !== 200) throw new Error(`revocation answered ${revoked.status}`);
    latencies.push(answered - sent);
    if ((await call(token)) === 200) result.directCallsSucceeded += 1;
    probing = false;
    await Promise.all(probers);
    for (const c of calls) {
      if (c.sent >= answered) {
        result.proberCallsAfterAnswer += 1;
        if (c.status === 200) result.proberSucceededAfterAnswer += 1;
      } else if (c.sent >= sent && c.status === 200) {
        result.proberSucceededInFlight += 1;
      }
    }
  }
  const sorted = latencies.sort((x, y) => x - y);
  return { revocations: count, revokeP50Ms: quantile(sorted, 0.5), revokeP99Ms: quantile(sorted, 0.99), revokeMaxMs: sorted.at(-1)!, ...result };
}

/** Two demo replicas on one database: tokens registered on A, exchanged on B, revoked on A, called on B. */
export async function measureRevocationWindow(count: number, root: string): Promise<RevocationResult> {
  const running = await startConfiguration({ name: 'revocation', database: 'postgres', replicas: 2 }, root, undefined);
  try {
    const [a, b] = running.servers as [ServerChild, ServerChild];
    return await revocationWindow(count, { registerAt: a.url, exchangeAt: b.url, revokeAt: a.url, callAt: b.url });
  } finally {
    await running.stop();
  }
}

/**
 * The service (servers/introspecting-service.ts, introspection on) and a resource server in another
 * process (servers/remote-api.ts: createRemoteGuard with a 60 s cache and `invalidation` on the
 * service's database): tokens revoked at the service, called at the resource server. With
 * `invalidation: false`, the control: the same guard without it, which must show late successes.
 */
export async function measureRemoteGuardWindow(count: number, root: string, options: { invalidation: boolean } = { invalidation: true }): Promise<RevocationResult> {
  const database = await createBenchDatabase();
  const children: ServerChild[] = [];
  try {
    const secret = randomBytes(32).toString('base64url');
    const service = await startServerChild('bench/src/servers/introspecting-service.ts', {
      cwd: root,
      env: { BENCH_SERVICE_DATABASE_URL: database.url, BENCH_INTROSPECTION_SECRET: secret },
    });
    children.push(service);
    const api = await startServerChild('bench/src/servers/remote-api.ts', {
      cwd: root,
      env: { BENCH_REMOTE_ISSUER: service.url, BENCH_REMOTE_DATABASE_URL: options.invalidation ? database.url : '', BENCH_INTROSPECTION_SECRET: secret },
    });
    children.push(api);
    return await revocationWindow(count, { registerAt: service.url, exchangeAt: service.url, revokeAt: service.url, callAt: api.url });
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await database.drop();
  }
}
