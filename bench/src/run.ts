import { grantTypes } from '@authmd/protocol';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerChild } from './child.ts';
import { measureCrypto } from './crypto.ts';
import { measureLoad, type LoadResult, type LoadSettings, type Request } from './load.ts';
import { machineInfo } from './machine.ts';
import { fixed, percent, table } from './report.ts';

/**
 * `npm run bench`: throughput and latency on loopback, each server in its own process, reported as
 * ratios to bare node:http (HTTP) and to raw node:crypto (ES256), so that numbers from different
 * machines can be compared.
 *
 * BENCH_SECONDS (default 5) sets the length of each measured run; BENCH_CONNECTIONS (default 32)
 * the concurrency; BENCH_PROFILE=1 writes CPU profiles of every server child to
 * bench/results/profiles/<scenario>/ (the largest file is the main thread).
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
const profileDir = process.env.BENCH_PROFILE === '1' ? join(root, 'bench', 'results', 'profiles') : undefined;

interface Scenario {
  name: string;
  script: string;
  /** Bare node:http runs bracket the others; their mean is the ceiling every ratio refers to. */
  ceiling?: boolean;
  /** Shown for insight, with no target: the service's adapter serving a static document. */
  diagnostic?: boolean;
  /** Obtains whatever the request needs (an assertion, a token) from the running server. */
  prepare(base: string): Promise<Request>;
}

const registrationRequest: Request = {
  method: 'POST',
  path: '/agent/identity',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ type: 'anonymous' }),
};

function tokenRequest(assertion: string): Request {
  return {
    method: 'POST',
    path: '/oauth2/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString(),
  };
}

const scenarios: Scenario[] = [
  { name: 'ceiling: bare node:http', script: BARE, ceiling: true, prepare: async () => ({ path: '/' }) },
  { name: 'anonymous registration', script: DEMO, prepare: async () => registrationRequest },
  { name: 'jwt-bearer exchange', script: DEMO, prepare: async (base) => tokenRequest(await obtainAssertion(base)) },
  {
    name: 'protected API call',
    script: DEMO,
    prepare: async (base) => ({ path: '/api/notes', headers: { authorization: `Bearer ${await obtainToken(base)}` } }),
  },
  { name: 'diagnostic: JWKS via service adapter', script: DEMO, diagnostic: true, prepare: async () => ({ path: '/.well-known/jwks.json' }) },
  { name: 'ceiling: bare node:http (again)', script: BARE, ceiling: true, prepare: async () => ({ path: '/' }) },
];

const targets = [
  { scenario: 'anonymous registration', atLeast: 0.25 },
  { scenario: 'protected API call', atLeast: 0.5 },
];

async function expectJson(base: string, request: Request): Promise<Record<string, any>> {
  const response = await fetch(base + request.path, { method: request.method ?? 'GET', headers: request.headers, body: request.body });
  if (!response.ok) throw new Error(`${request.method ?? 'GET'} ${request.path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

async function obtainAssertion(base: string): Promise<string> {
  return (await expectJson(base, registrationRequest)).identity.assertion;
}

async function obtainToken(base: string): Promise<string> {
  return (await expectJson(base, tokenRequest(await obtainAssertion(base)))).access_token;
}

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
  `each HTTP scenario: ${settings.warmupSeconds} s warm-up + ${settings.seconds} s measured, ${settings.connections} connections, ` +
    `pipelining ${settings.pipelining}; server in its own process, autocannon in this one`,
);
out();

out('crypto ceilings (ES256, P-256, ~1 s each in 5 interleaved rounds, medians, in this process):');
const crypto = await measureCrypto(1000);
const cryptoRows = crypto.results.map((r) => {
  const ceiling = r.ceiling ? crypto.results.find((c) => c.name === r.ceiling) : undefined;
  return { ...r, ratio: ceiling ? r.opsPerSecond / ceiling.opsPerSecond : undefined };
});
out(table(['operation', 'ops/s', 'vs raw'], cryptoRows.map((r) => [r.name, fixed(r.opsPerSecond), r.ratio === undefined ? 'ceiling' : percent(r.ratio)]), [false, true, true]));
out(`(signing input: ${crypto.inputBytes} bytes, shaped like a service identity assertion)`);
out();

type ScenarioResult = LoadResult & {
  name: string;
  ceiling: boolean;
  diagnostic: boolean;
  /** Server CPU time per request, in microseconds: steadier than req/s when other processes compete for the cores. */
  cpuMicrosPerRequest?: number;
  ratio?: number;
  /** Bare node:http's CPU per request divided by this scenario's. */
  cpuRatio?: number;
};
const results: ScenarioResult[] = [];
for (const scenario of scenarios) {
  process.stderr.write(`running: ${scenario.name}…\n`);
  // One directory per scenario: every thread (the main one, tsx's loader thread) writes its own profile.
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, scenario.name.replace(/\W+/g, '-'))}`] : [];
  const server = await startServerChild(scenario.script, { cwd: root, nodeArgs });
  try {
    const request = await scenario.prepare(server.url);
    await expectJson(server.url, request); // one request by hand: a mistake shows here, not as thousands of non-2xx
    const measured = await measureLoad(server, request, settings);
    const cpuMicrosPerRequest = measured.serverCpu === undefined ? undefined : (measured.serverCpu / measured.requestsPerSecond) * 1e6;
    results.push({ name: scenario.name, ceiling: !!scenario.ceiling, diagnostic: !!scenario.diagnostic, ...measured, cpuMicrosPerRequest });
  } finally {
    await server.stop();
  }
}
const ceilings = results.filter((r) => r.ceiling).map((r) => r.requestsPerSecond);
const bare = ceilings.reduce((a, b) => a + b, 0) / ceilings.length;
const drift = Math.abs(ceilings[0]! - ceilings.at(-1)!) / bare;
const bareCpuCosts = results.filter((r) => r.ceiling && r.cpuMicrosPerRequest !== undefined).map((r) => r.cpuMicrosPerRequest!);
const bareCpu = bareCpuCosts.length ? bareCpuCosts.reduce((a, b) => a + b, 0) / bareCpuCosts.length : undefined;
for (const result of results) {
  if (result.ceiling) continue;
  result.ratio = result.requestsPerSecond / bare;
  if (bareCpu !== undefined && result.cpuMicrosPerRequest !== undefined) result.cpuRatio = bareCpu / result.cpuMicrosPerRequest;
}

out('HTTP on loopback:');
out(
  table(
    ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'vs bare', 'server CPU', 'µs CPU/req', 'by CPU', 'loadgen CPU', 'others CPU', 'steal'],
    results.map((r) => [
      r.name,
      fixed(r.requestsPerSecond),
      fixed(r.p50Ms),
      fixed(r.p99Ms),
      String(r.non2xx),
      String(r.errors + r.timeouts),
      r.ratio === undefined ? 'ceiling' : percent(r.ratio),
      percent(r.serverCpu),
      r.cpuMicrosPerRequest === undefined ? '–' : fixed(r.cpuMicrosPerRequest),
      r.ceiling ? 'ceiling' : percent(r.cpuRatio),
      percent(r.loadCpu),
      percent(r.othersCpu),
      percent(r.steal),
    ]),
    [false, true, true, true, true, true, true, true, true, true, true, true, true],
  ),
);
out(`ratios are to the mean of the two bare node:http runs (${fixed(bare)} req/s; they differ by ${percent(drift)})`);
out('CPU: share of one core during the measured run (others: every other process on the machine); steal: time the hypervisor took.');
out('µs CPU/req: server CPU time per request; "by CPU" compares it with bare node:http, which holds up better than req/s');
out('when other processes compete for the cores. Latency has 1 ms resolution.');
const busy = results.filter((r) => (r.othersCpu ?? 0) > 0.15);
if (drift > 0.15 || busy.length) {
  out(
    `warning: the ceiling runs differ by ${percent(drift)}${busy.length ? ` and other processes used CPU during ${busy.length} run(s)` : ''}: ` +
      `this machine was not quiet, treat the ratios as rough (${machine.cores} cores for server, load generator and everything else)`,
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

const failures = results.filter((r) => r.non2xx > 0 || r.errors > 0 || r.timeouts > 0);
const resultsDir = join(root, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, 'latest.json');
writeFileSync(
  file,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine,
      settings,
      crypto: { inputBytes: crypto.inputBytes, results: cryptoRows },
      http: { bareRequestsPerSecond: bare, bareCpuMicrosPerRequest: bareCpu, ceilingDrift: drift, scenarios: results },
      targets: targetRows,
      ok: failures.length === 0,
    },
    null,
    2,
  )}\n`,
);
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
