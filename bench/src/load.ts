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
  let next = 0;
  const optionsFor = ({ server, request }: { server: ServerChild; request: Request }) => ({
    url: server.url + request.path,
    method: request.method ?? 'GET',
    headers: request.headers ?? {},
    body: request.body ?? request.bodies?.[0],
    connections,
    pipelining: settings.pipelining,
    ...(request.bodies
      ? { requests: [{ setupRequest: (data: { method: string; path: string; headers: Record<string, string>; body?: string | Buffer }) => ({ ...data, body: request.bodies![next++ % request.bodies!.length] }) }] }
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
    ...(targets.some((t) => t.request.bodies) ? { bodiesReused: next > Math.min(...targets.map((t) => t.request.bodies?.length ?? Infinity)) } : {}),
    loadCpu,
    databaseCpu: dbCpu,
    othersCpu: machine && serverCpu !== undefined ? Math.max(0, machine.busyCores - serverCpu - loadCpu - (dbCpu ?? 0)) : undefined,
    steal: machine?.steal,
  };
}
