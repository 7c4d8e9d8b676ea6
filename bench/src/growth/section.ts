import { postgresAvailable } from '../postgres.ts';
import { fixed, table } from '../report.ts';
import { measureGrowth, type GrowthResult, type GrowthSettings } from './growth.ts';
import type { OperationStats } from './measure.ts';

/**
 * The bench's `growth` section (issue 13, flat cost as the data grows): `measureGrowth` on SQLite,
 * and on PostgreSQL when it is reachable, reported as the p50 at the large fill over the p50 at the
 * small one (target ≤ 1.2×), the latency while expired rows are purged, and the purge's rate.
 *
 * BENCH_GROWTH_REGISTRATIONS (default 1,000,000), BENCH_GROWTH_SMALL (1,000), BENCH_GROWTH_SAMPLES
 * (200 timed rounds, after BENCH_GROWTH_WARMUP, 20), BENCH_GROWTH_EXPIRED (100,000 expired rows),
 * BENCH_GROWTH_BACKENDS (default `sqlite,postgres`).
 */

/** Issue 13: p50 at a million registrations within 1.2× of p50 at a thousand. */
const FLAT = 1.2;

export function growthSettings(number: (name: string, fallback: number) => number): GrowthSettings {
  const settings = {
    large: Math.floor(number('BENCH_GROWTH_REGISTRATIONS', 1_000_000)),
    small: Math.floor(number('BENCH_GROWTH_SMALL', 1_000)),
    samples: Math.floor(number('BENCH_GROWTH_SAMPLES', 200)),
    warmup: Math.floor(number('BENCH_GROWTH_WARMUP', 20)),
    expired: Math.floor(number('BENCH_GROWTH_EXPIRED', 100_000)),
  };
  // Every measured round uses one unclaimed registration of the fill, and one in four is unclaimed.
  const rounds = settings.samples + settings.warmup;
  if (settings.small % 4 !== 0 || settings.small < 4 * rounds) {
    throw new Error(`BENCH_GROWTH_SMALL must be a multiple of 4 and at least 4 × (samples + warm-up) = ${4 * rounds} (got ${settings.small})`);
  }
  // The large store gives two rounds' worth: one for the comparison, one for the purge run.
  if (settings.large <= settings.small || settings.large < 8 * rounds) {
    throw new Error(`BENCH_GROWTH_REGISTRATIONS must be above BENCH_GROWTH_SMALL and at least 8 × (samples + warm-up) = ${8 * rounds}`);
  }
  return settings;
}

export async function runGrowth(settings: GrowthSettings, out: (line?: string) => void, required: boolean) {
  const chosen = (process.env.BENCH_GROWTH_BACKENDS || 'sqlite,postgres').split(',').map((name) => name.trim());
  const unknown = chosen.filter((name) => name !== 'sqlite' && name !== 'postgres');
  if (unknown.length) throw new Error(`BENCH_GROWTH_BACKENDS: unknown backend(s) ${unknown.join(', ')}: choose from sqlite, postgres`);
  const backends = chosen as ('sqlite' | 'postgres')[];
  if (backends.includes('postgres') && !(await postgresAvailable())) {
    if (required) throw new Error('the growth section measures PostgreSQL too: it is not reachable (BENCH_PG_URL; BENCH_GROWTH_BACKENDS=sqlite leaves it out)');
    backends.splice(backends.indexOf('postgres'), 1);
    out('growth: PostgreSQL is not reachable, measured on SQLite only');
  }

  out(
    `growth (issue 13): the demo on a store filled with ${fixed(settings.small)} registrations and on one filled with ${fixed(settings.large)} ` +
      `(with their users, tokens, claim attempts, delegations and audit events), side by side, each first serving pages of the admin search until its memory ` +
      `stopped growing (warm-up.ts); ${settings.samples} timed rounds after ${settings.warmup} ` +
      `of warm-up, alternating between the two, one request at a time on one connection, each round on a registration of the fill not used before`,
  );
  const results: GrowthResult[] = [];
  const verdicts: Verdict[] = [];
  for (const backend of backends) {
    let last = 0;
    const progress = (line: string) => {
      if (Date.now() - last < 2000 && !line.startsWith('measuring')) return;
      last = Date.now();
      process.stderr.write(`running: growth: ${line}\n`);
    };
    const result = await measureGrowth(backend, settings, progress);
    results.push(result);
    verdicts.push(...report(result, settings, out));
  }
  out(`targets (reported, not asserted): p50 at ${fixed(settings.large)} within ${FLAT}× of p50 at ${fixed(settings.small)}:`);
  for (const v of verdicts) out(`  ${v.backend} ${v.operation}: ${v.ratio.toFixed(2)}×  ${v.verdict}`);
  out();
  return { settings, results, verdicts };
}

interface Verdict {
  backend: GrowthResult['backend'];
  operation: string;
  ratio: number;
  verdict: 'PASS' | 'BELOW';
}

/** Prints one backend's results; returns its verdicts. */
function report(r: GrowthResult, settings: GrowthSettings, out: (line?: string) => void): Verdict[] {
  const stat = (list: OperationStats[], operation: string) => list.find((s) => s.operation === operation)!;
  const ms = (value: number) => value.toFixed(2);
  const verdicts = r.large.map((large): Verdict => {
    const ratio = large.p50Ms / stat(r.small, large.operation).p50Ms;
    return { backend: r.backend, operation: large.operation, ratio, verdict: ratio <= FLAT ? 'PASS' : 'BELOW' };
  });
  out();
  out(`${r.backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}:`);
  // The server's own p50 (demo-server.ts times each request): what of the client's time the service spent.
  const inServer = (value: number | undefined) => (value === undefined ? '–' : ms(value));
  const serverRatio = (small: OperationStats, large: OperationStats) =>
    small.serverP50Ms === undefined || large.serverP50Ms === undefined ? '–' : `${(large.serverP50Ms / small.serverP50Ms).toFixed(2)}×`;
  out(
    table(
      ['operation', `p50 at ${fixed(settings.small)}`, `p50 at ${fixed(settings.large)}`, 'ratio', '', 'in server', 'in server', 'ratio', 'p99 small', 'p99 large', 'p50 purging', 'p99 purging'],
      r.large.map((large, i) => {
        const small = stat(r.small, large.operation);
        const purging = stat(r.duringPurge, large.operation);
        const { ratio, verdict } = verdicts[i]!;
        return [
          large.operation,
          ms(small.p50Ms),
          ms(large.p50Ms),
          `${ratio.toFixed(2)}×`,
          verdict,
          inServer(small.serverP50Ms),
          inServer(large.serverP50Ms),
          serverRatio(small, large),
          ms(small.p99Ms),
          ms(large.p99Ms),
          ms(purging.p50Ms),
          ms(purging.p99Ms),
        ];
      }),
      [false, true, true, true, false, true, true, true, true, true, true, true],
    ),
  );
  out('(milliseconds, measured by the client on loopback; "in server": the p50 of the same requests timed by the service\'s process');
  out(' itself, from their headers\' arrival until their answer was ended, at each size; the verdict is the client\'s; "purging": the rounds');
  out(' again at the large size, on a demo purging expired rows from its start, so not warmed up as the compared two were)');
  r.fills.forEach((fill, i) => {
    out(
      `fill: ${fixed(fill.registrations)} registrations, ${fixed(fill.rows)} rows in ${fill.seconds.toFixed(0)} s (${fixed(fill.rows / fill.seconds)} rows/s through the store), ` +
        `then ${r.readThroughs[i]} (not timed)`,
    );
  });
  for (const w of r.warmUps) {
    const memory = w.rssBefore === undefined || w.rssAfter === undefined ? '' : ` (its memory ${mib(w.rssBefore)} → ${mib(w.rssAfter)} MiB)`;
    out(`warm-up at ${fixed(w.registrations)}: ${fixed(w.requests)} pages of the operator's search between the registrations the rounds use, before the rounds, until the demo's memory stopped growing${memory}`);
  }
  out(`database size at ${fixed(settings.large)} registrations: ${mib(r.databaseBytes)} MiB`);
  const largeFill = r.fills.at(-1)!;
  out(
    `purge: of ${fixed(settings.expired)} expired rows, the running service (purging every second) left ${fixed(r.purgeLeft)} after the ` +
      `${r.purgeRoundsSeconds.toFixed(0)} s of measured rounds; purgeExpired alone deletes ${fixed(r.purgeRowsPerSecond)} rows/s at ${fixed(settings.large)} registrations ` +
      `(the fill, writing as fast as the store takes rows, wrote ${fixed(largeFill.rows / largeFill.seconds)} rows/s)`,
  );
  if (r.purgeRoundsSeconds < 3) out('  (the rounds ended before the purge could run through: the service purges every second; raise BENCH_GROWTH_SAMPLES)');
  return verdicts;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
