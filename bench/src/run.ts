import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerChild, type ServerChild } from './child.ts';
import { startIdJagScenario } from './id-jags.ts';
import { startUnverifiedAssertionsScenario } from './unverified-assertions.ts';
import { measureCrypto } from './crypto.ts';
import { combineSlices, measureLoad, measureLoadSpread, measurePaired, sliceSeconds, type LoadResult, type LoadSettings, type Request } from './load.ts';
import { machineInfo } from './machine.ts';
import { postgresAvailable, postgresSettings, synchronousCommit } from './postgres.ts';
import { measureCell, measureRemoteGuardWindow, measureRevocationWindow, obtainAssertion, obtainToken, registrationRequest, tokenRequest, workloads, expectJson, type CellResult, type Configuration, type RevocationResult } from './replicas.ts';
import { fixed, percent, table } from './report.ts';
import { growthSettings, runGrowth } from './growth/section.ts';
import { runEngine } from './engine/engine.ts';

/**
 * `npm run bench`: throughput and latency on loopback, each server in its own process, reported as
 * ratios to bare node:http (HTTP) and to raw node:crypto (ES256), so that numbers from different
 * machines can be compared.
 *
 * BENCH_SECONDS (default 5) sets the length of each measured run; BENCH_CONNECTIONS (default 32)
 * the concurrency; BENCH_PAIRS (default 3) how many slices each HTTP scenario's run is cut into,
 * alternating with slices of bare node:http, the ceiling of its ratios (load.ts, measurePaired);
 * BENCH_PROFILE=1 writes CPU profiles of every server child to bench/results/profiles/<scenario>/
 * (the largest file is the main thread).
 *
 * Sections: `crypto` (ES256 ceilings), `http` (the demo on SQLite against bare node:http), `engine`
 * (the service alone through service.dispatch: CPU, bytes and write calls per request; engine/engine.ts),
 * `replicas` (issue 11: PostgreSQL next to SQLite, one replica and two, and the revocation window;
 * see replicas.ts). All run by default; `npm run bench -- --only replicas` (or BENCH_ONLY=replicas,
 * a comma-separated list) runs only those named. The replicas section needs PostgreSQL (BENCH_PG_URL,
 * default postgres://postgres@127.0.0.1:5432/postgres; skipped with a note in a full run when it is
 * not reachable), takes BENCH_ROUNDS (default 1: each workload × configuration that many times,
 * interleaved, the median run kept), BENCH_REVOCATIONS (default 200) and BENCH_REDIS_URL (default
 * redis://127.0.0.1:6379: the PostgreSQL + Redis columns when a Redis answers there; `off` skips them).
 * `growth` (issue 13: the cost of exchange, API call and the claim at a thousand and at a million
 * registrations, and the purge; its settings are in growth/section.ts) fills a million registrations
 * per backend, which takes minutes.
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const DEMO = 'bench/src/servers/demo-server.ts';
const BARE = 'bench/src/servers/bare-http.ts';

const settings: LoadSettings = {
  seconds: positiveNumber('BENCH_SECONDS', 5),
  warmupSeconds: 1,
  connections: positiveNumber('BENCH_CONNECTIONS', 32),
  pipelining: 1,
};
const pairs = positiveNumber('BENCH_PAIRS', 3);
if (!Number.isInteger(pairs)) throw new Error(`BENCH_PAIRS must be a whole number of slices (got ${pairs})`);
/** How long an HTTP scenario loads its server: the warm-up, then its slices (measurePaired). */
const scenarioSeconds = settings.warmupSeconds + pairs * sliceSeconds(settings, pairs);
const profileDir = process.env.BENCH_PROFILE === '1' ? join(root, 'bench', 'results', 'profiles') : undefined;

const SECTIONS = ['crypto', 'http', 'engine', 'replicas', 'growth'] as const;
type Section = (typeof SECTIONS)[number];
const only = selectedSections();
const runs = (section: Section) => only === undefined || only.has(section);

function selectedSections(): Set<Section> | undefined {
  const at = process.argv.indexOf('--only');
  const raw = at >= 0 ? process.argv[at + 1] : process.env.BENCH_ONLY;
  if (raw === undefined || raw === '') {
    if (at >= 0) throw new Error(`--only needs a section: ${SECTIONS.join(', ')}`);
    return undefined;
  }
  const names = raw.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`unknown bench section(s) ${unknown.join(', ')}: choose from ${SECTIONS.join(', ')}`);
  return new Set(names as Section[]);
}

interface Scenario {
  name: string;
  script: string;
  /** Shown for insight, with no target: the service's adapter serving a static document. */
  diagnostic?: boolean;
  /** Obtains whatever the request needs (an assertion, a token) from the running server; with `setup`, the setup does. */
  prepare?(base: string): Promise<Request>;
  /** Started before the server child, stopped after it: its environment, and what prepares its requests. */
  setup?: () => Promise<ScenarioSetup>;
}

interface ScenarioSetup {
  env: Record<string, string>;
  prepare(base: string): Promise<Request>;
  close(): Promise<void>;
}

const scenarios: Scenario[] = [
  { name: 'anonymous registration', script: DEMO, prepare: async () => registrationRequest },
  { name: 'jwt-bearer exchange', script: DEMO, prepare: async (base) => tokenRequest(await obtainAssertion(base)) },
  {
    name: 'protected API call',
    script: DEMO,
    prepare: async (base) => ({ path: '/api/notes', headers: { authorization: `Bearer ${await obtainToken(base)}` } }),
  },
  {
    name: 'ID-JAG registration',
    script: DEMO,
    // Each ID-JAG is good once: enough for the warm-up and the measured slices at up to 4,000/s (a 30 s run ran out at 20,000).
    setup: () => startIdJagScenario(positiveNumber('BENCH_ID_JAGS', Math.max(20_000, 4_000 * scenarioSeconds))),
  },
  {
    name: 'diagnostic: exchange, assertions new to the process',
    script: DEMO,
    diagnostic: true,
    // Each assertion once: more than the warm-up and the measured slices use at up to 8,000/s.
    setup: () => startUnverifiedAssertionsScenario(positiveNumber('BENCH_ASSERTIONS', Math.max(20_000, 8_000 * scenarioSeconds)), DEMO, root),
  },
  { name: 'diagnostic: JWKS via service adapter', script: DEMO, diagnostic: true, prepare: async () => ({ path: '/.well-known/jwks.json' }) },
];
const CEILING = 'ceiling: bare node:http';

/** Issue 13's targets. */
const targets = [
  { scenario: 'anonymous registration', atLeast: 0.2 },
  { scenario: 'jwt-bearer exchange', atLeast: 0.2 },
  { scenario: 'ID-JAG registration', atLeast: 0.08 },
  { scenario: 'protected API call', atLeast: 0.5 },
];

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0)) throw new Error(`${name} must be a positive number (got "${raw}")`);
  return value;
}

// ── run ────────────────────────────────────────────────────────────────────────────────────────

const machine = machineInfo();
const out = (line = '') => process.stdout.write(`${line}\n`);
out(`authmd bench — ${new Date().toISOString()}`);
out(`node ${machine.node} · ${machine.platform} · ${machine.cpu} · ${machine.cores} cores · ${machine.memoryGiB} GiB`);
out(
  `each HTTP scenario: ${settings.warmupSeconds} s warm-up, then ${pairs} slices of ${sliceSeconds(settings, pairs)} s measured between slices of bare node:http, ${settings.connections} connections, ` +
    `pipelining ${settings.pipelining}; server in its own process, autocannon in this one`,
);
out();

const sectionsRun = SECTIONS.filter(runs);
if (only) {
  out(`sections: ${sectionsRun.join(', ')} (--only / BENCH_ONLY)`);
  out();
}

async function runCrypto() {
  out('crypto ceilings (ES256, P-256, ~1 s each in 5 interleaved rounds, medians, in this process):');
  const crypto = await measureCrypto(1000);
  const cryptoRows = crypto.results.map((r) => {
    const ceiling = r.ceiling ? crypto.results.find((c) => c.name === r.ceiling) : undefined;
    return { ...r, ratio: ceiling ? r.opsPerSecond / ceiling.opsPerSecond : undefined };
  });
  out(table(['operation', 'ops/s', 'vs raw'], cryptoRows.map((r) => [r.name, fixed(r.opsPerSecond), r.ratio === undefined ? 'ceiling' : percent(r.ratio)]), [false, true, true]));
  out(`(signing input: ${crypto.inputBytes} bytes, shaped like a service identity assertion)`);
  out();
  return { inputBytes: crypto.inputBytes, results: cryptoRows };
}

type ScenarioResult = LoadResult & {
  name: string;
  ceiling: boolean;
  diagnostic: boolean;
  /** Server CPU time per request, in microseconds: steadier than req/s when other processes compete for the cores. */
  cpuMicrosPerRequest?: number;
  /** The bare node:http slices interleaved with this scenario's (measurePaired), which its ratios refer to. */
  pairedCeiling?: { requestsPerSecond: number; cpuMicrosPerRequest?: number };
  ratio?: number;
  /** Bare node:http's CPU per request divided by this scenario's. */
  cpuRatio?: number;
};

const cpuPerRequest = (r: LoadResult) => (r.serverCpu === undefined || r.requestsPerSecond === 0 ? undefined : (r.serverCpu / r.requestsPerSecond) * 1e6);

async function runHttp() {
  const results: ScenarioResult[] = [];
  const ceilingSlices: LoadResult[] = [];
  const ceilingRates: number[] = [];
  // One directory per server: every thread (the main one, tsx's loader thread) writes its own profile.
  const profileArgs = (name: string) => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name.replace(/\W+/g, '-'))}`] : []);
  const bare = await startServerChild(BARE, { cwd: root, nodeArgs: profileArgs(CEILING) });
  const ceiling = { server: bare, request: { path: '/' } };
  try {
    for (const scenario of scenarios) {
      process.stderr.write(`running: ${scenario.name}, in ${pairs} slices alternating with bare node:http…\n`);
      const setup = await scenario.setup?.();
      let server: ServerChild;
      try {
        server = await startServerChild(scenario.script, { cwd: root, nodeArgs: profileArgs(scenario.name), env: setup?.env });
      } catch (error) {
        await setup?.close();
        throw error;
      }
      try {
        const request = await (setup ?? scenario).prepare!(server.url);
        await expectJson(server.url, request); // one request by hand: a mistake shows here, not as thousands of non-2xx
        const paired = await measurePaired(ceiling, { server, request }, settings, pairs);
        ceilingSlices.push(paired.ceiling);
        ceilingRates.push(...paired.slices.ceiling);
        const pairedCeiling = { requestsPerSecond: paired.ceiling.requestsPerSecond, cpuMicrosPerRequest: cpuPerRequest(paired.ceiling) };
        const cpuMicrosPerRequest = cpuPerRequest(paired.scenario);
        results.push({
          name: scenario.name,
          ceiling: false,
          diagnostic: !!scenario.diagnostic,
          ...paired.scenario,
          cpuMicrosPerRequest,
          pairedCeiling,
          ratio: paired.scenario.requestsPerSecond / pairedCeiling.requestsPerSecond,
          ...(pairedCeiling.cpuMicrosPerRequest !== undefined && cpuMicrosPerRequest !== undefined ? { cpuRatio: pairedCeiling.cpuMicrosPerRequest / cpuMicrosPerRequest } : {}),
        });
      } finally {
        await server.stop();
        await setup?.close();
      }
    }
  } finally {
    await bare.stop();
  }
  const allCeiling = combineSlices(ceilingSlices);
  results.unshift({ name: CEILING, ceiling: true, diagnostic: false, ...allCeiling, cpuMicrosPerRequest: cpuPerRequest(allCeiling) });
  const bareRate = allCeiling.requestsPerSecond;
  const drift = (Math.max(...ceilingRates) - Math.min(...ceilingRates)) / bareRate;

  out('HTTP on loopback:');
  out(
    table(
      ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'bare req/s', 'vs bare', 'server CPU', 'µs CPU/req', 'by CPU', 'KB written/req', 'writes/req', 'loadgen CPU', 'others CPU', 'steal'],
      results.map((r) => [
        r.name,
        fixed(r.requestsPerSecond),
        fixed(r.p50Ms),
        fixed(r.p99Ms),
        String(r.non2xx),
        String(r.errors + r.timeouts),
        r.pairedCeiling === undefined ? '–' : fixed(r.pairedCeiling.requestsPerSecond),
        r.ratio === undefined ? 'ceiling' : percent(r.ratio),
        percent(r.serverCpu),
        r.cpuMicrosPerRequest === undefined ? '–' : fixed(r.cpuMicrosPerRequest),
        r.ceiling ? 'ceiling' : percent(r.cpuRatio),
        r.serverWrites === undefined ? '–' : (r.serverWrites.bytesPerRequest / 1024).toFixed(1),
        r.serverWrites === undefined ? '–' : r.serverWrites.callsPerRequest.toFixed(1),
        percent(r.loadCpu),
        percent(r.othersCpu),
        percent(r.steal),
      ]),
      [false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true],
    ),
  );
  out(
    `each scenario ran in ${pairs} slices of ${sliceSeconds(settings, pairs)} s alternating with slices of bare node:http (one process for the whole section), ` +
      `and its ratios are to those slices ("bare req/s"); the ceiling row is all of them, ${fixed(Math.min(...ceilingRates))}–${fixed(Math.max(...ceilingRates))} req/s`,
  );
  out('CPU: share of one core during the measured run (others: every other process on the machine); steal: time the hypervisor took.');
  out('µs CPU/req: server CPU time per request; "by CPU" compares it with bare node:http, which holds up better than req/s');
  out('when other processes compete for the cores. Latency has 1 ms resolution.');
  out('KB written/req, writes/req: what the server passed to write calls per request (/proc/<pid>/io): its answers, WAL frames,');
  out('checkpoint copies and any temporary file; a temporary sub-journal once showed here as 95 KB and 44 writes a registration.');
  for (const r of results.filter((r) => r.bodiesReused && r.name.includes('new to the process'))) {
    out(`warning: "${r.name}" ran out of assertions and sent some again (raise BENCH_ASSERTIONS): those were not new to the process`);
  }
  const busy = results.filter((r) => (r.othersCpu ?? 0) > 0.15);
  if (drift > 0.15 || busy.length) {
    out(
      `warning: bare node:http's slices ranged over ${percent(drift)} of their mean${busy.length ? ` and other processes used CPU during ${busy.length} run(s)` : ''}: ` +
        `this machine was not quiet; each ratio is to the slices interleaved with its own, but treat them as rough (${machine.cores} cores for server, load generator and everything else)`,
    );
  }
  out();

  out('targets (reported, not asserted):');
  const targetRows = targets.map((target) => {
    const ratio = results.find((r) => r.name === target.scenario)!.ratio!;
    const cpuRatio = results.find((r) => r.name === target.scenario)!.cpuRatio;
    return { ...target, ratio, cpuRatio, verdict: ratio >= target.atLeast ? 'PASS' : 'BELOW' };
  });
  for (const t of targetRows) {
    out(`  ${t.scenario} ≥ ${percent(t.atLeast)} of bare node:http: ${percent(t.ratio)}  ${t.verdict}   (by CPU per request: ${percent(t.cpuRatio)})`);
  }

  out();
  return { bareRequestsPerSecond: bareRate, bareCpuMicrosPerRequest: results[0]!.cpuMicrosPerRequest, ceilingDrift: drift, pairs, scenarios: results, targets: targetRows };
}

/** Whether a Redis answers PING at `url` (host and port only; a password in the URL is not used for this probe). */
async function redisAnswers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(/^\+PONG|^-NOAUTH/.test(data.toString())));
  });
}

/** A run whose requests did not all succeed (for revocation windows: late successes as non2xx, cold tokens as errors). */
interface Failure {
  name: string;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

const rounds = positiveNumber('BENCH_ROUNDS', 1);
// Read before any section runs: a wrong setting fails at once, not after the other sections.
const growth = runs('growth') ? growthSettings(positiveNumber) : undefined;
const revocations = positiveNumber('BENCH_REVOCATIONS', 200);

async function runReplicas() {
  const version = await postgresAvailable();
  if (!version) {
    const message = `PostgreSQL is not reachable at ${process.env.BENCH_PG_URL ? 'BENCH_PG_URL' : 'postgres://postgres@127.0.0.1:5432/postgres'}`;
    if (only) throw new Error(`the replicas section needs PostgreSQL: ${message}`);
    out(`replicas (issue 11): skipped, ${message}`);
    out();
    return { skipped: message };
  }
  const pgSettings = await postgresSettings();
  const configurations: Configuration[] = [
    { name: 'SQLite, 1 process', database: 'sqlite', replicas: 1 },
    { name: 'PostgreSQL, 1 replica', database: 'postgres', replicas: 1 },
    { name: 'PostgreSQL, 2 replicas', database: 'postgres', replicas: 2 },
  ];
  // The PostgreSQL + Redis columns (issue 11): rate-limit counters and invalidation in Redis, when one answers.
  const redisUrl = process.env.BENCH_REDIS_URL === 'off' ? undefined : (process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379');
  const redisUp = redisUrl !== undefined && (await redisAnswers(redisUrl));
  if (process.env.BENCH_REDIS_URL && process.env.BENCH_REDIS_URL !== 'off' && !redisUp) throw new Error(`BENCH_REDIS_URL: no Redis answers PING at ${process.env.BENCH_REDIS_URL}`);
  if (redisUp) {
    configurations.push(
      { name: 'PostgreSQL + Redis, 1 replica', database: 'postgres', replicas: 1, redisUrl },
      { name: 'PostgreSQL + Redis, 2 replicas', database: 'postgres', replicas: 2, redisUrl },
    );
  }
  const [sqlite, pg1, pg2, redis1, redis2] = configurations.map((c) => c.name) as [string, string, string, string | undefined, string | undefined];

  out(
    `replicas (issue 11): the demo on a fresh database per run; ${settings.connections} connections split evenly across the replicas ` +
      `(one autocannon instance per replica, in this process); two replicas share the database, the public URL and the KEK; ` +
      `${rounds} round(s), median kept`,
  );
  out(`PostgreSQL ${pgSettings.server_version} on this machine: fsync ${pgSettings.fsync}, synchronous_commit ${pgSettings.synchronous_commit}, wal_sync_method ${pgSettings.wal_sync_method}, shared_buffers ${pgSettings.shared_buffers}`);
  if (synchronousCommit !== undefined) out(`diagnostic: the bench databases run with synchronous_commit = ${synchronousCommit} (BENCH_PG_SYNCHRONOUS_COMMIT)`);

  const bareRuns: LoadResult[] = [];
  // The machine's own ceiling for "two replicas against one": two bare node:http processes, the load split as for two replicas.
  const bareTwoRuns: LoadResult[] = [];
  const measureBare = async () => {
    process.stderr.write('running: replicas: bare node:http, one process and two…\n');
    const server = await startServerChild(BARE, { cwd: root });
    try {
      bareRuns.push(await measureLoad(server, { path: '/' }, settings));
    } finally {
      await server.stop();
    }
    const two = await Promise.all([startServerChild(BARE, { cwd: root }), startServerChild(BARE, { cwd: root })]);
    try {
      bareTwoRuns.push(await measureLoadSpread(two.map((child) => ({ server: child, request: { path: '/' } })), settings));
    } finally {
      await Promise.all(two.map((child) => child.stop()));
    }
  };
  await measureBare();
  const samples = new Map<string, CellResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const workload of workloads) {
      for (const config of configurations) {
        process.stderr.write(`running: replicas: ${workload.name} on ${config.name}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}…\n`);
        const cell = await measureCell(workload, config, settings, root, profileDir);
        const key = `${workload.name}|${config.name}`;
        samples.set(key, [...(samples.get(key) ?? []), cell]);
      }
    }
  }
  await measureBare();
  const bare = bareRuns.reduce((a, r) => a + r.requestsPerSecond, 0) / bareRuns.length;
  const bareDrift = Math.abs(bareRuns[0]!.requestsPerSecond - bareRuns.at(-1)!.requestsPerSecond) / bare;
  const bareTwoVsOne = bareTwoRuns.reduce((a, r) => a + r.requestsPerSecond, 0) / bareTwoRuns.length / bare;
  const cells: CellResult[] = [...samples.values()].map((runs) => runs.sort((x, y) => x.requestsPerSecond - y.requestsPerSecond)[Math.floor(runs.length / 2)]!);
  const cell = (workload: string, config: string) => cells.find((c) => c.workload === workload && c.configuration === config);

  out(
    table(
      ['workload', 'configuration', 'req/s', 'per replica', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs bare', 'servers CPU', 'db CPU', 'µs CPU/req', 'queries/req', 'loadgen CPU', 'others CPU', 'steal'],
      cells.map((c) => [
        c.workload,
        c.configuration,
        fixed(c.requestsPerSecond),
        c.perTarget.length > 1 ? c.perTarget.map((n) => fixed(n)).join(' + ') : '',
        fixed(c.p50Ms),
        fixed(c.p99Ms),
        String(c.non2xx),
        String(c.errors + c.timeouts),
        percent(c.requestsPerSecond / bare),
        percent(c.serverCpu),
        percent(c.databaseCpu),
        c.cpuMicrosPerRequest === undefined ? '–' : fixed(c.cpuMicrosPerRequest),
        c.queriesPerRequest === undefined ? '–' : fixed(c.queriesPerRequest, 1),
        percent(c.loadCpu),
        percent(c.othersCpu),
        percent(c.steal),
      ]),
      [false, false, true, true, true, true, true, true, true, true, true, true, true, true, true, true],
    ),
  );
  out(`vs bare: to the mean of two bare node:http runs bracketing the section (${fixed(bare)} req/s; they differ by ${percent(bareDrift)}).`);
  out('CPU as shares of one core; db CPU: the PostgreSQL backends of the bench database (not the WAL writer, checkpointer, or other databases);');
  out('µs CPU/req: servers + db per request (PostgreSQL\'s shared background processes not included). queries/req: every pg query the');
  out('servers sent (LISTEN/NOTIFY and transaction statements included) per request. With two replicas p50 is the instances\' weighted mean, p99 the higher.');
  out();

  const comparisons = workloads.map((w) => {
    const [s, p1, p2] = [cell(w.name, sqlite)!, cell(w.name, pg1)!, cell(w.name, pg2)!];
    const [r1, r2] = [redis1 ? cell(w.name, redis1) : undefined, redis2 ? cell(w.name, redis2) : undefined];
    const cpuRatio = (a?: number, b?: number) => (a === undefined || b === undefined ? undefined : a / b);
    return {
      workload: w.name,
      postgresVsSqlite: p1.requestsPerSecond / s.requestsPerSecond,
      /** SQLite's CPU per request (server) over PostgreSQL's (servers + db): like req/s, higher is better. */
      postgresVsSqliteByCpu: cpuRatio(s.cpuMicrosPerRequest, p1.cpuMicrosPerRequest),
      twoVsOne: p2.requestsPerSecond / p1.requestsPerSecond,
      twoVsOneByCpu: cpuRatio(p1.cpuMicrosPerRequest, p2.cpuMicrosPerRequest),
      redisVsSqlite: r1 ? r1.requestsPerSecond / s.requestsPerSecond : undefined,
      redisVsPostgres: r1 ? r1.requestsPerSecond / p1.requestsPerSecond : undefined,
      redisTwoVsOne: r1 && r2 ? r2.requestsPerSecond / r1.requestsPerSecond : undefined,
    };
  });
  out('targets (reported, not asserted): PostgreSQL within 2× of SQLite per request (≥ 50%), two replicas ≥ one (≥ 100%):');
  out(
    table(
      ['workload', 'PostgreSQL / SQLite', 'by CPU/req', '', '2 replicas / 1', 'by CPU/req', '', ...(redis1 ? ['PG+Redis / SQLite', 'PG+Redis / PG', 'PG+Redis 2 / 1'] : [])],
      comparisons.map((c) => [
        c.workload,
        percent(c.postgresVsSqlite),
        percent(c.postgresVsSqliteByCpu),
        c.postgresVsSqlite >= 0.5 ? 'PASS' : 'BELOW',
        percent(c.twoVsOne),
        percent(c.twoVsOneByCpu),
        c.twoVsOne >= 1 ? 'PASS' : 'BELOW',
        ...(redis1 ? [percent(c.redisVsSqlite), percent(c.redisVsPostgres), percent(c.redisTwoVsOne)] : []),
      ]),
      [false, true, true, false, true, true, false, true, true, true],
    ),
  );
  out(`(${machine.cores} cores shared by the load generator, the replica(s) and PostgreSQL: a second replica adds an event loop, not a core.`);
  out(` The machine's own ceiling for "2 replicas / 1": two bare node:http processes served ${percent(bareTwoVsOne)} of one, in the same runs that bracket the section.)`);
  if (!redis1) out(`PostgreSQL + Redis: not measured (${redisUrl ? `no Redis answers at ${redisUrl}` : 'BENCH_REDIS_URL=off'}).`);
  out();

  for (const config of [pg1, redis1].filter((c) => c !== undefined)) {
    out(`PostgreSQL queries per request by shape (${config}; top ones):`);
    for (const w of workloads) {
      const c = cell(w.name, config)!;
      out(`  ${w.name}: ${(c.queryShapes ?? []).map(([shape, n]) => `${shape} ×${n.toFixed(2)}`).join(' · ') || '–'}`);
    }
  }
  out();

  const windows: { name: string; what: string; result: RevocationResult }[] = [];
  process.stderr.write(`running: replicas: revocation window (${revocations} revocations)…\n`);
  windows.push({
    name: 'two demo replicas',
    what: 'token validated on replica B, revoked on A, then called on B',
    result: await measureRevocationWindow(revocations, root),
  });
  process.stderr.write(`running: replicas: remote guard revocation window (${revocations} revocations)…\n`);
  windows.push({
    name: 'remote guard in another process',
    what: 'token validated by createRemoteGuard (60 s cache, invalidation on the service\'s PostgreSQL), revoked at the service, then called at the guard',
    result: await measureRemoteGuardWindow(revocations, root),
  });
  const controlCount = Math.min(20, revocations);
  process.stderr.write(`running: replicas: remote guard without invalidation, control (${controlCount} revocations)…\n`);
  const control = await measureRemoteGuardWindow(controlCount, root, { invalidation: false });
  for (const { name, what, result: r } of windows) {
    out(`revocation visibility, ${name} (${r.revocations} times: ${what}):`);
    out(`  revoke (commit + broadcast + every listener's acknowledgement): p50 ${r.revokeP50Ms.toFixed(1)} ms, p99 ${r.revokeP99Ms.toFixed(1)} ms, max ${r.revokeMaxMs.toFixed(1)} ms`);
    out(`  the token was accepted before the revocation (twice, so cached): ${r.warmCallsOk}/${r.revocations}`);
    out(
      `  calls sent after the revocation's answer that succeeded: ${r.directCallsSucceeded} of ${r.revocations} immediate calls, ` +
        `${r.proberSucceededAfterAnswer} of ${r.proberCallsAfterAnswer} concurrent prober calls (must be 0 by design)`,
    );
    out(`  (prober calls sent while the revocation was in flight that still succeeded: ${r.proberSucceededInFlight}; allowed)`);
  }
  out(
    `control, the same remote guard without \`invalidation\` (${control.revocations} times): ${control.directCallsSucceeded} of ${control.revocations} immediate calls ` +
      `and ${control.proberSucceededAfterAnswer} of ${control.proberCallsAfterAnswer} prober calls after the answer succeeded (its cache, 60 s, is the window)`,
  );
  out();
  if (bareDrift > 0.15 || cells.some((c) => (c.othersCpu ?? 0) > 0.15)) {
    out('warning: other processes used CPU during some replica runs, or the bare runs differ by more than 15%: treat these numbers as rough.');
    out();
  }
  const failures: Failure[] = cells
    .filter((c) => c.non2xx > 0 || c.errors > 0 || c.timeouts > 0)
    .map((c) => ({ name: `${c.workload} on ${c.configuration}`, non2xx: c.non2xx, errors: c.errors, timeouts: c.timeouts, statusCodes: c.statusCodes }));
  for (const { name, result: r } of windows) {
    if (r.directCallsSucceeded + r.proberSucceededAfterAnswer > 0 || r.warmCallsOk < r.revocations) {
      const late = r.directCallsSucceeded + r.proberSucceededAfterAnswer;
      failures.push({ name: `revocation window, ${name}`, non2xx: late, errors: r.revocations - r.warmCallsOk, timeouts: 0, statusCodes: {} });
    }
  }
  return { postgres: { ...pgSettings, benchSynchronousCommit: synchronousCommit }, rounds, bareRequestsPerSecond: bare, bareDrift, bareTwoVsOne, cells, comparisons, revocation: windows, remoteGuardControl: control, failures };
}

const report: Record<string, unknown> = { date: new Date().toISOString(), machine, settings, sections: sectionsRun };
const failures: Failure[] = [];
if (runs('crypto')) report.crypto = await runCrypto();
if (runs('http')) {
  const { targets: targetRows, ...http } = await runHttp();
  report.http = http;
  report.targets = targetRows;
  failures.push(...http.scenarios.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0));
}
if (runs('engine')) {
  report.engine = await runEngine(
    root,
    { requests: positiveNumber('BENCH_ENGINE_REQUESTS', 20_000), warmup: positiveNumber('BENCH_ENGINE_WARMUP', 2_000), inFlight: positiveNumber('BENCH_ENGINE_IN_FLIGHT', 32) },
    out,
    profileDir,
  );
}
if (runs('replicas')) {
  const replicas = await runReplicas();
  report.replicas = replicas;
  failures.push(...(replicas.failures ?? []));
}
if (growth) report.growth = await runGrowth(growth, out, only !== undefined);
const resultsDir = join(root, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
// A partial run (--only) does not overwrite the complete one.
const file = join(resultsDir, only ? `latest-${sectionsRun.join('-')}.json` : 'latest.json');
writeFileSync(file, `${JSON.stringify({ ...report, ok: failures.length === 0 }, null, 2)}\n`);
out();
out(`wrote ${file}`);
if (profileDir) out(`CPU profiles of the server children: ${profileDir}`);

if (failures.length) {
  for (const f of failures) {
    process.stderr.write(
      `FAIL: ${f.name}: ${f.non2xx} non-2xx responses, ${f.errors} errors, ${f.timeouts} timeouts (status codes: ${JSON.stringify(f.statusCodes)})\n`,
    );
  }
  process.stderr.write('The numbers above are not valid: every request of a scenario must succeed.\n');
  process.exitCode = 1;
}
