import autocannon from 'autocannon';
import type { ServerChild } from './child.ts';
import { cpuCounters, machineLoadBetween } from './machine.ts';

export interface Request {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
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
  /** Share of one core this process (the load generator) used during the measured run. */
  loadCpu: number;
  /** Cores' worth of CPU that other processes on the machine used during the measured run. */
  othersCpu: number | undefined;
  /** Share of the machine's CPU time the hypervisor took away during the measured run (Linux VMs). */
  steal: number | undefined;
}

/** A warm-up run, then the measured run, against one server child. */
export async function measureLoad(server: ServerChild, request: Request, settings: LoadSettings): Promise<LoadResult> {
  const options = {
    url: server.url + request.path,
    method: request.method ?? 'GET',
    headers: request.headers ?? {},
    body: request.body,
    connections: settings.connections,
    pipelining: settings.pipelining,
  };
  if (settings.warmupSeconds > 0) await autocannon({ ...options, duration: settings.warmupSeconds });

  const machineBefore = cpuCounters();
  const serverBefore = server.cpuSeconds();
  const loadBefore = process.cpuUsage();
  const started = performance.now();
  const result = await autocannon({ ...options, duration: settings.seconds });
  const elapsed = (performance.now() - started) / 1000;
  const serverAfter = server.cpuSeconds();
  const load = process.cpuUsage(loadBefore);
  const machineAfter = cpuCounters();

  const machine = machineLoadBetween(machineBefore, machineAfter);
  const serverCpu = serverBefore === undefined || serverAfter === undefined ? undefined : (serverAfter - serverBefore) / elapsed;
  const loadCpu = (load.user + load.system) / 1e6 / elapsed;

  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total2xx: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, stat]) => [code, stat.count])),
    serverCpu,
    loadCpu,
    othersCpu: machine && serverCpu !== undefined ? Math.max(0, machine.busyCores - serverCpu - loadCpu) : undefined,
    steal: machine?.steal,
  };
}
