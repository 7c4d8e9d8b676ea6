import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ServerMicros } from './growth/server-timing.ts';

export interface ServerChild {
  url: string;
  pid: number;
  /** CPU seconds (user + system) the child has used so far, or undefined where /proc is not available. */
  cpuSeconds(): number | undefined;
  /** Bytes the child has passed to write calls so far, and how many calls, or undefined where /proc is not available. */
  writes(): ProcessWrites | undefined;
  /**
   * Asks the child for its counters over the IPC channel (demo-server.ts answers with the PostgreSQL
   * queries it has sent so far, by shape, and its request times when it keeps them); undefined when
   * the child does not answer within 2 s.
   */
  stats(): Promise<ChildStats | undefined>;
  stop(): Promise<void>;
}

export interface ChildStats {
  /** HTTP requests the server has received so far. */
  requests: number;
  /** Queries sent to PostgreSQL so far, by the first words of their SQL. */
  queries: Record<string, number>;
  /** With BENCH_DEMO_SERVER_TIMING=1: each request's time in the server so far, in µs by route (growth/server-timing.ts). */
  serverMicros?: ServerMicros;
}

/**
 * Runs a server script in its own process (`node --import tsx <script>`), so that the load generator
 * never shares an event loop with it, and waits for its `listening <url>` line. The script itself is
 * TypeScript, but without the `@authmd/source` condition the packages it imports resolve to their
 * built JavaScript (`dist/`, which `npm run bench` builds first): what an installed package runs. Run
 * through tsx, every function the source creates at run time also gets a name set on it
 * (`Object.defineProperty`), and a registration cost about a tenth more CPU (docs/decisions.md).
 */
export async function startServerChild(
  script: string,
  options: { cwd: string; nodeArgs?: string[]; env?: Record<string, string | undefined> },
): Promise<ServerChild> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', script], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    let settled = false;
    const lines = createInterface({ input: child.stdout! });
    const settle = (outcome: { url: string } | { error: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if ('url' in outcome) return resolve(outcome.url);
      child.kill('SIGKILL');
      reject(new Error(`${outcome.error.message}\n${stderr}`));
    };
    const timer = setTimeout(() => settle({ error: new Error(`${script} did not print its URL within 20 s`) }), 20_000);
    lines.on('line', (line) => {
      const match = /^listening (http:\/\/\S+)$/.exec(line);
      if (match) settle({ url: match[1]! });
    });
    void exited.then((code) => settle({ error: new Error(`${script} exited with code ${code} before listening`) }));
  });

  return {
    url,
    pid: child.pid!,
    cpuSeconds: () => processCpuSeconds(child.pid!),
    writes: () => processWrites(child.pid!),
    stats: () =>
      new Promise<ChildStats | undefined>((resolve) => {
        if (!child.connected) return resolve(undefined);
        const timer = setTimeout(() => {
          child.off('message', onMessage);
          resolve(undefined);
        }, 2000);
        const onMessage = (message: unknown) => {
          if (!message || typeof message !== 'object' || (message as { type?: unknown }).type !== 'stats') return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(message as unknown as ChildStats);
        };
        child.on('message', onMessage);
        child.send({ type: 'stats' });
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

let ticksPerSecond: number | undefined;

/** CPU seconds (user + system) process `pid` has used so far, from /proc (Linux); undefined elsewhere or once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

export interface ProcessWrites {
  bytes: number;
  calls: number;
}

/**
 * What process `pid` has written so far, from /proc/<pid>/io (Linux): `wchar`, the bytes passed to
 * write calls of every kind (its HTTP answers, its WAL frames, its checkpoints' copies, any temporary
 * file), and `syscw`, how many calls. Undefined elsewhere or once it is gone.
 */
export function processWrites(pid: number): ProcessWrites | undefined {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1]);
    const [bytes, calls] = [field('wchar'), field('syscw')];
    return Number.isFinite(bytes) && Number.isFinite(calls) ? { bytes, calls } : undefined;
  } catch {
    return undefined;
  }
}

/** Resident memory (VmRSS) of process `pid` in bytes, from /proc (Linux); undefined elsewhere or once it is gone. */
export function processResidentBytes(pid: number): number | undefined {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? undefined : Number(kib) * 1024;
  } catch {
    return undefined;
  }
}
