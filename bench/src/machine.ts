import { readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release, totalmem } from 'node:os';

export function machineInfo() {
  return {
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/** Whole-machine CPU counters from /proc/stat (Linux), in clock ticks summed over all cores. */
export interface CpuCounters {
  total: number;
  idle: number;
  steal: number;
}

export function cpuCounters(): CpuCounters | undefined {
  try {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n', 1)[0]!
      .trim()
      .split(/\s+/)
      .slice(1, 9)
      .map(Number) as [number, number, number, number, number, number, number, number];
    return { total: user + nice + system + idle + iowait + irq + softirq + steal, idle: idle + iowait, steal };
  } catch {
    return undefined;
  }
}

/**
 * Between two readings: how many cores were busy on the whole machine, and the share of time the
 * hypervisor took away (steal). Undefined where /proc/stat is not available.
 */
export function machineLoadBetween(before: CpuCounters | undefined, after: CpuCounters | undefined): { busyCores: number; steal: number } | undefined {
  if (!before || !after || after.total === before.total) return undefined;
  const total = after.total - before.total;
  const busy = total - (after.idle - before.idle) - (after.steal - before.steal);
  return { busyCores: (busy / total) * availableParallelism(), steal: (after.steal - before.steal) / total };
}
