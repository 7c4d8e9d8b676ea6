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

const WORKLOADS = [
  { name: 'anonymous registration', workload: 'anonymous' },
  { name: 'jwt-bearer exchange', workload: 'exchange' },
  { name: 'ID-JAG registration', workload: 'id-jag' },
] as const;

export interface EngineResult {
  name: string;
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
  for (const { name, workload } of WORKLOADS) {
    process.stderr.write(`running: engine: ${name}…\n`);
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'bench/src/engine/engine-run.ts'], {
      cwd: root,
      // Without the @authmd/source condition the packages resolve to dist/, as the HTTP section's servers do.
      env: {
        ...process.env,
        ENGINE_WORKLOAD: workload,
        ENGINE_REQUESTS: String(settings.requests),
        ENGINE_WARMUP: String(settings.warmup),
        ENGINE_IN_FLIGHT: String(settings.inFlight),
        ...(profileDir ? { ENGINE_PROFILE: join(profileDir, `engine-${workload}.cpuprofile`) } : {}),
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    const line = stdout.trim().split('\n').at(-1)!;
    results.push({ name, ...(JSON.parse(line) as Omit<EngineResult, 'name'>) });
  }
  out(`the service alone (service.dispatch on SQLite, ${settings.inFlight} in flight, ${fixed(settings.requests)} requests after ${fixed(settings.warmup)}, one process each):`);
  out(
    table(
      ['workload', 'req/s', 'µs CPU/req', 'of which system', 'KB written/req', 'writes/req'],
      results.map((r) => [r.name, fixed(r.requestsPerSecond), fixed(r.cpuMicrosPerRequest), fixed(r.systemMicrosPerRequest), (r.writeBytesPerRequest / 1024).toFixed(1), r.writeCallsPerRequest.toFixed(1)]),
      [false, true, true, true, true, true],
    ),
  );
  out('CPU of the whole process (the event loop, the threadpool\'s signatures, the checkpoint worker); writes from /proc/self/io: WAL frames,');
  out('checkpoint copies, any temporary file. No HTTP: compare with the HTTP section for what the wire adds.');
  out();
  return results;
}
