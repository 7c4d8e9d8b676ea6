import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fixed, table } from '../report.ts';

/**
 * The `engine` section (issue 13): anonymous registration, jwt-bearer exchange and ID-JAG registration
 * through `service.dispatch` alone, on SQLite, each in a process of its own on the built packages
 * (engine-run.ts), for what the service itself costs per request: CPU, system CPU, bytes passed to
 * write calls and their number. Settings: BENCH_ENGINE_REQUESTS (default 20,000), BENCH_ENGINE_WARMUP
 * (2,000), BENCH_ENGINE_IN_FLIGHT (32); with BENCH_PROFILE=1 a CPU profile of each measured run.
 */

const execFileAsync = promisify(execFile);

/**
 * `alone`: one request in flight, a quarter of the requests. Under light load each registration is a
 * commit of its own and writes a page of every B-tree it touches; under load the group commit shares
 * those pages (docs/decisions.md, "what an anonymous registration costs by how many come at once").
 */
const WORKLOADS: readonly { name: string; workload: string; alone?: true }[] = [
  { name: 'anonymous registration', workload: 'anonymous' },
  { name: 'anonymous registration, one at a time', workload: 'anonymous', alone: true },
  { name: 'jwt-bearer exchange', workload: 'exchange' },
  { name: 'ID-JAG registration', workload: 'id-jag' },
  { name: 'ID-JAG registration, accounts already linked', workload: 'id-jag-returning' },
];

export interface EngineResult {
  name: string;
  inFlight: number;
  requests: number;
  requestsPerSecond: number;
  cpuMicrosPerRequest: number;
  systemMicrosPerRequest: number;
  writeBytesPerRequest: number;
  writeCallsPerRequest: number;
}

export interface EngineSettings {
  requests: number;
  warmup: number;
  inFlight: number;
}

export async function runEngine(root: string, settings: EngineSettings, out: (line?: string) => void, profileDir: string | undefined): Promise<EngineResult[]> {
  const results: EngineResult[] = [];
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  for (const { name, workload, alone } of WORKLOADS) {
    process.stderr.write(`running: engine: ${name}…\n`);
    const inFlight = alone ? 1 : settings.inFlight;
    const requests = alone ? Math.max(1, Math.round(settings.requests / 4)) : settings.requests;
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'bench/src/engine/engine-run.ts'], {
      cwd: root,
      // Without the @authmd/source condition the packages resolve to dist/, as the HTTP section's servers do.
      env: {
        ...process.env,
        ENGINE_WORKLOAD: workload,
        ENGINE_REQUESTS: String(requests),
        ENGINE_WARMUP: String(settings.warmup),
        ENGINE_IN_FLIGHT: String(inFlight),
        ...(profileDir ? { ENGINE_PROFILE: join(profileDir, `engine-${workload}${alone ? '-alone' : ''}.cpuprofile`) } : {}),
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    const line = stdout.trim().split('\n').at(-1)!;
    results.push({ name, inFlight, ...(JSON.parse(line) as Omit<EngineResult, 'name' | 'inFlight'>) });
  }
  out(`the service alone (service.dispatch on SQLite, ${fixed(settings.requests)} requests after ${fixed(settings.warmup)}, a quarter as many one at a time, one process each):`);
  out(
    table(
      ['workload', 'in flight', 'req/s', 'µs CPU/req', 'of which system', 'KB written/req', 'writes/req'],
      results.map((r) => [r.name, String(r.inFlight), fixed(r.requestsPerSecond), fixed(r.cpuMicrosPerRequest), fixed(r.systemMicrosPerRequest), (r.writeBytesPerRequest / 1024).toFixed(1), r.writeCallsPerRequest.toFixed(1)]),
      [false, true, true, true, true, true, true],
    ),
  );
  out('CPU of the whole process (the event loop, the threadpool\'s signatures, the checkpoint worker); writes from /proc/self/io: WAL frames,');
  out('checkpoint copies, any temporary file. No HTTP: compare with the HTTP section for what the wire adds.');
  out();
  return results;
}
