import autocannon from 'autocannon';
import type { ServerChild } from './child.ts';
import { cpuCounters, machineLoadBetween } from './machine.ts';

export interface Request {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Bodies to send in turn instead of `body` (one rotation shared by every connection). */
  bodies?: string[];
}

export interface LoadSettings {
  seconds: number;
  warmupSeconds: number;
  connections: number;
  pipelining: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  total2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  /** Share of one core the server process used during the measured run. */
  serverCpu: number | undefined;
  /**
   * What the servers wrote per request during the measured run (/proc/<pid>/io): bytes passed to write
   * calls, their answers included, and the number of calls. Undefined where /proc is not available.
   */
  serverWrites: { bytesPerRequest: number; callsPerRequest: number } | undefined;
  /** Share of one core this process (the load generator) used during the measured run. */
  loadCpu: number;
  /** Cores' worth of CPU that other processes on the machine used during the measured run. */
  othersCpu: number | undefined;
  /** Share of the machine's CPU time the hypervisor took away during the measured run (Linux VMs). */
  steal: number | undefined;
  /** With `bodies`: whether the rotation ran out and started again (each body was not sent once only). */
  bodiesReused?: boolean;
}

/**
 * How many bodies of each rotation have been sent, across runs: a scenario measured in slices
 * (`measurePaired`) goes on where its last slice stopped, so that each body is still sent once.
 */
const sent = new WeakMap<readonly string[], number>();

function nextBody(bodies: readonly string[]): string {
  const count = sent.get(bodies) ?? 0;
  sent.set(bodies, count + 1);
  return bodies[count % bodies.length]!;
}

/** A warm-up run, then the measured run, against one server child. */
export function measureLoad(server: ServerChild, request: Request, settings: LoadSettings): Promise<LoadResult> {
  return measureLoadSpread([{ server, request }], settings);
}

export interface SpreadResult extends LoadResult {
  /** Requests per second each target served, in the order given. */
  perTarget: number[];
  /** Cores' worth of CPU the database's backends used during the measured run (when `databaseCpu` is given). */
  databaseCpu: number | undefined;
}

/**
 * A warm-up run, then the measured run, against one or more server children at once: one autocannon
 * instance per target, in parallel in this process, each with its share of the connections
 * (`settings.connections` split evenly). Requests per second are summed; p50 is the mean of the
 * instances' p50s weighted by their requests, p99 the highest instance's (autocannon gives no
 * mergeable histogram). `serverCpu` is the servers' CPU summed. `databaseCpu` reads a cumulative CPU
 * counter in seconds (the database's backends), for the share of the machine the database took;
 * it is read inside the measured interval, so it costs a query or two there.
 */
export async function measureLoadSpread(
  targets: { server: ServerChild; request: Request }[],
  settings: LoadSettings,
  hooks: {
    databaseCpu?: () => Promise<number | undefined>;
    /** Called right before and right after the measured run (outside its timing), e.g. to read counters. */
    beforeMeasured?: () => Promise<void>;
    afterMeasured?: () => Promise<void>;
  } = {},
): Promise<SpreadResult> {
  const { databaseCpu } = hooks;
  const connections = Math.max(1, Math.floor(settings.connections / targets.length));
  const optionsFor = ({ server, request }: { server: ServerChild; request: Request }) => ({
    url: server.url + request.path,
    method: request.method ?? 'GET',
    headers: request.headers ?? {},
    body: request.body ?? request.bodies?.[0],
    connections,
    pipelining: settings.pipelining,
    ...(request.bodies
      ? { requests: [{ setupRequest: (data: { method: string; path: string; headers: Record<string, string>; body?: string | Buffer }) => ({ ...data, body: nextBody(request.bodies!) }) }] }
      : {}),
  });
  if (settings.warmupSeconds > 0) await Promise.all(targets.map((t) => autocannon({ ...optionsFor(t), duration: settings.warmupSeconds })));

  await hooks.beforeMeasured?.();
  const machineBefore = cpuCounters();
  const serversBefore = targets.map((t) => t.server.cpuSeconds());
  const writesBefore = targets.map((t) => t.server.writes());
  const databaseBefore = await databaseCpu?.();
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  const results = await Promise.all(targets.map((t) => autocannon({ ...optionsFor(t), duration: settings.seconds })));
  const elapsed = (performance.now() - started) / 1000;
  const load = process.cpuUsage(loadBefore);
  const serversAfter = targets.map((t) => t.server.cpuSeconds());
  const writesAfter = targets.map((t) => t.server.writes());
  const databaseAfter = await databaseCpu?.();
  const machineAfter = cpuCounters();
  await hooks.afterMeasured?.();

  const machine = machineLoadBetween(machineBefore, machineAfter);
  const serverSeconds = serversBefore.every((b, i) => b !== undefined && serversAfter[i] !== undefined)
    ? serversAfter.reduce<number>((sum, after, i) => sum + after! - serversBefore[i]!, 0)
    : undefined;
  const serverCpu = serverSeconds === undefined ? undefined : serverSeconds / elapsed;
  const loadCpu = (load.user + load.system) / 1e6 / elapsed;
  const dbCpu = databaseBefore === undefined || databaseAfter === undefined ? undefined : (databaseAfter - databaseBefore) / elapsed;
  const perTarget = results.map((r) => r.requests.average);
  const requests = results.map((r) => r['2xx'] + r.non2xx);
  const totalRequests = requests.reduce((a, b) => a + b, 0);
  const statusCodes: Record<string, number> = {};
  for (const r of results) for (const [code, stat] of Object.entries(r.statusCodeStats)) statusCodes[code] = (statusCodes[code] ?? 0) + stat.count;
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((a, r) => a + f(r), 0);
  const written = writesBefore.every((b, i) => b !== undefined && writesAfter[i] !== undefined) && totalRequests > 0
    ? {
        bytesPerRequest: writesAfter.reduce<number>((a, after, i) => a + after!.bytes - writesBefore[i]!.bytes, 0) / totalRequests,
        callsPerRequest: writesAfter.reduce<number>((a, after, i) => a + after!.calls - writesBefore[i]!.calls, 0) / totalRequests,
      }
    : undefined;

  return {
    requestsPerSecond: perTarget.reduce((a, b) => a + b, 0),
    perTarget,
    p50Ms: totalRequests ? results.reduce((a, r, i) => a + r.latency.p50 * requests[i]!, 0) / totalRequests : results[0]!.latency.p50,
    p99Ms: Math.max(...results.map((r) => r.latency.p99)),
    total2xx: sum((r) => r['2xx']),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    statusCodes,
    serverCpu,
    serverWrites: written,
    ...(targets.some((t) => t.request.bodies) ? { bodiesReused: targets.some((t) => t.request.bodies !== undefined && (sent.get(t.request.bodies) ?? 0) > t.request.bodies.length) } : {}),
    loadCpu,
    databaseCpu: dbCpu,
    othersCpu: machine && serverCpu !== undefined ? Math.max(0, machine.busyCores - serverCpu - loadCpu - (dbCpu ?? 0)) : undefined,
    steal: machine?.steal,
  };
}

export interface Target {
  server: ServerChild;
  request: Request;
}

export interface PairedResult {
  /** The ceiling's slices, combined. */
  ceiling: LoadResult;
  /** The scenario's slices, combined. */
  scenario: LoadResult;
  /** Requests per second of each slice, in the order they ran, for the spread. */
  slices: { ceiling: number[]; scenario: number[] };
}

/**
 * A scenario and the ceiling it is a ratio of, measured in alternating slices. On a VM beside other
 * tenants the machine's speed drifts: two bare runs a minute apart, bracketing the section, once
 * differed by 70%, and a ratio to their mean measured the drift as much as the server. Here both
 * servers warm up, then `pairs` rounds run one slice of each (`sliceSeconds`), the ceiling first in
 * even rounds and the scenario first in odd ones (ABBA: a steady drift weighs on both alike). Each
 * side is then combined as if it were one run.
 */
export async function measurePaired(ceiling: Target, scenario: Target, settings: LoadSettings, pairs: number): Promise<PairedResult> {
  const slice = { ...settings, seconds: sliceSeconds(settings, pairs), warmupSeconds: 0 };
  if (settings.warmupSeconds > 0) {
    for (const target of [ceiling, scenario]) await measureLoad(target.server, target.request, { ...settings, seconds: settings.warmupSeconds, warmupSeconds: 0 });
  }
  const ceilingSlices: LoadResult[] = [];
  const scenarioSlices: LoadResult[] = [];
  for (let round = 0; round < pairs; round++) {
    const order = round % 2 === 0 ? ([ceiling, scenario] as const) : ([scenario, ceiling] as const);
    for (const target of order) {
      const result = await measureLoad(target.server, target.request, slice);
      (target === ceiling ? ceilingSlices : scenarioSlices).push(result);
    }
  }
  return {
    ceiling: combineSlices(ceilingSlices),
    scenario: combineSlices(scenarioSlices),
    slices: { ceiling: ceilingSlices.map((r) => r.requestsPerSecond), scenario: scenarioSlices.map((r) => r.requestsPerSecond) },
  };
}

/**
 * How long each slice runs: whole seconds, at least one. autocannon stops at its next one-second
 * sample after the duration, so a slice of 1.7 s would run for 2 anyway.
 */
export function sliceSeconds(settings: LoadSettings, pairs: number): number {
  return Math.max(1, Math.round(settings.seconds / pairs));
}

/** Runs of equal length as one: rates and shares averaged, counts summed, p50 weighted by requests, the highest p99. */
export function combineSlices(slices: readonly LoadResult[]): LoadResult {
  const requests = slices.map((r) => r.total2xx + r.non2xx);
  /** The average of a measure over the slices, each weighing `weights[i]`; undefined when a slice lacks it. */
  const average = (f: (r: LoadResult) => number | undefined, weights: readonly number[]): number | undefined => {
    const values = slices.map(f);
    const weight = weights.reduce((a, b) => a + b, 0);
    return values.every((v) => v !== undefined) && weight > 0 ? values.reduce<number>((a, v, i) => a + v! * weights[i]!, 0) / weight : undefined;
  };
  const mean = (f: (r: LoadResult) => number | undefined) => average(f, slices.map(() => 1));
  const perRequest = (f: (r: LoadResult) => number | undefined) => average(f, requests);
  const sum = (f: (r: LoadResult) => number) => slices.reduce((a, r) => a + f(r), 0);
  const statusCodes: Record<string, number> = {};
  for (const r of slices) for (const [code, count] of Object.entries(r.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + count;
  const bytesPerRequest = perRequest((r) => r.serverWrites?.bytesPerRequest);
  const callsPerRequest = perRequest((r) => r.serverWrites?.callsPerRequest);
  const reused = slices.filter((r) => r.bodiesReused !== undefined);
  return {
    requestsPerSecond: mean((r) => r.requestsPerSecond)!,
    p50Ms: perRequest((r) => r.p50Ms) ?? slices[0]!.p50Ms,
    p99Ms: Math.max(...slices.map((r) => r.p99Ms)),
    total2xx: sum((r) => r.total2xx),
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    statusCodes,
    serverCpu: mean((r) => r.serverCpu),
    serverWrites: bytesPerRequest === undefined || callsPerRequest === undefined ? undefined : { bytesPerRequest, callsPerRequest },
    loadCpu: mean((r) => r.loadCpu)!,
    othersCpu: mean((r) => r.othersCpu),
    steal: mean((r) => r.steal),
    ...(reused.length ? { bodiesReused: reused.some((r) => r.bodiesReused) } : {}),
  };
}
