import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPostgresStore, createSqliteStore, type Store } from '@authmd/service';
import { accessTokens, serviceTables } from '../../../packages/service/src/schema.ts';
import { secretKey } from '../../../packages/service/src/secrets.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { startServerChild, type ServerChild } from '../child.ts';
import { createBenchDatabase, withPgClient, type BenchDatabase } from '../postgres.ts';
import { expectJson, obtainToken } from '../replicas.ts';
import { fillExpired, fillStore, type FillPlan, type KeptSecrets, type TokenShape } from './fill.ts';
import { measureOperations, type OperationStats } from './measure.ts';
import { readThrough, vacuumAndReadThrough } from './read-through.ts';
import { warmUp, type WarmUp } from './warm-up.ts';

/**
 * Issue 13, flat cost as the data grows: the demo on a store holding `small` registrations and the
 * demo on another holding `large`, running side by side, with the p50 of exchange, API call, claim
 * start and claim completion measured in alternating rounds (this shared machine's speed drifts by
 * more than 20% in the minutes a million-row fill takes, so the two are measured in one window).
 * Then the purge: `expired` rows past their expiry are added to the large store, and
 * - its demo runs the rounds again while its maintenance (every second) purges them, and how many
 *   it had not purged when the rounds ended is counted;
 * - the store's `purgeExpired` alone, timed in this process on as many rows again: rows per second.
 */

const DEMO = 'bench/src/servers/demo-server.ts';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface GrowthSettings {
  small: number;
  large: number;
  samples: number;
  warmup: number;
  /** Expired rows for the purge run. */
  expired: number;
}

export interface FillRecord {
  registrations: number;
  rows: number;
  seconds: number;
}

export interface GrowthResult {
  backend: 'sqlite' | 'postgres';
  fills: FillRecord[];
  /** What was read through after each fill (`settle`). */
  readThroughs: string[];
  /** What brought each demo of the compared rounds to a steady state first (warm-up.ts). */
  warmUps: (WarmUp & { registrations: number })[];
  small: OperationStats[];
  large: OperationStats[];
  /** The rounds again on the large store, while the service purges `expired` rows. */
  duringPurge: OperationStats[];
  /** Expired rows still there when the rounds during the purge ended, and how long they took. */
  purgeLeft: number;
  purgeRoundsSeconds: number;
  /** The store's purgeExpired alone, in this process: rows deleted per second. */
  purgeRowsPerSecond: number;
  /** The database's size at `large`, in bytes. */
  databaseBytes: number;
}

export async function measureGrowth(backend: 'sqlite' | 'postgres', settings: GrowthSettings, progress: (line: string) => void): Promise<GrowthResult> {
  const deployments: Deployment[] = [];
  try {
    const small = await createDeployment(backend);
    deployments.push(small);
    const large = await createDeployment(backend);
    deployments.push(large);
    const rounds = { warmup: settings.warmup, samples: settings.samples };
    const perRun = settings.warmup + settings.samples;
    const fills: FillRecord[] = [];
    const readThroughs: string[] = [];
    const fill = async (deployment: Deployment, count: number, keep: number): Promise<KeptSecrets[]> => {
      const plan = keepPlan(count, keep, await learnTokenShape(deployment));
      const started = performance.now();
      const rows = await deployment.withStore(
        (store) =>
          fillStore(store, { from: 0, to: count }, plan, {
            batch: backend === 'postgres' ? 50 : 500,
            parallel: backend === 'postgres' ? 4 : 1,
            progress: (done) => progress(`filling ${backend}: ${done} of ${count} registrations`),
          }),
        { bulk: true },
      );
      fills.push({ registrations: count, rows, seconds: (performance.now() - started) / 1000 });
      // A long-lived PostgreSQL database has been vacuumed and analysed as it grew; one just filled
      // would be, by autovacuum, for minutes of the measurement (seen as a p50 twice as high).
      readThroughs.push(await deployment.settle());
      return plan.kept;
    };

    const smallKept = await fill(small, settings.small, perRun);
    // Twice as many kept on the large store: every other one for the rounds during the purge.
    const largeKept = await fill(large, settings.large, 2 * perRun);
    progress(`measuring ${backend} at ${settings.small} and at ${settings.large} registrations, in alternating rounds`);
    const warmUps: GrowthResult['warmUps'] = [];
    const [smallStats, largeStats] = await withDemos([small, large], SERVER_TIMING, async ([a, b]) => {
      // Every kept registration of the large store, the purge run's too: the warm-up reads none of them.
      warmUps.push({ registrations: settings.small, ...(await warmUp(a!, smallKept)) }, { registrations: settings.large, ...(await warmUp(b!, largeKept)) });
      return measureOperations(
        [
          { ...target(a!), kept: smallKept },
          { ...target(b!), kept: largeKept.filter((_, i) => i % 2 === 0) },
        ],
        rounds,
      );
    });
    const databaseBytes = await large.bytes();

    // The purge: expired rows, then the rounds again (on the registrations kept for them) while the
    // service's maintenance deletes them every second; what it left is deleted and counted here. Its
    // demo is not warmed up: the purge starts with the demo, and would be done before the rounds.
    const token = await learnTokenShape(large);
    await large.withStore((store) => store.transaction((tx) => fillExpired(tx, settings.expired, Date.now(), token.resource)));
    progress(`measuring ${backend} at ${settings.large} registrations while ${settings.expired} expired rows are purged`);
    let purgeRoundsSeconds = 0;
    const [duringPurge] = await withDemos([large], { ...SERVER_TIMING, BENCH_DEMO_MAINTENANCE_SECONDS: '1' }, async ([child]) => {
      const started = performance.now();
      const stats = await measureOperations([{ ...target(child!), kept: largeKept.filter((_, i) => i % 2 === 1) }], rounds);
      purgeRoundsSeconds = (performance.now() - started) / 1000;
      return stats;
    });
    const purgeLeft = await large.withStore((store) => store.purgeExpired(Date.now()));

    await large.withStore((store) => store.transaction((tx) => fillExpired(tx, settings.expired, Date.now(), token.resource)));
    const purgeStarted = performance.now();
    const purged = await large.withStore((store) => store.purgeExpired(Date.now()));
    const purgeRowsPerSecond = purged / ((performance.now() - purgeStarted) / 1000);

    return { backend, fills, readThroughs, warmUps, small: smallStats!, large: largeStats!, duringPurge: duringPurge!, purgeLeft, purgeRoundsSeconds, purgeRowsPerSecond, databaseBytes };
  } finally {
    for (const deployment of deployments) await deployment.close();
  }
}

/**
 * One demo's persistent state: a data directory, a port kept for every run of the demo (the issuer,
 * and with it the tokens' resource, stays the same) and, on PostgreSQL, a database of its own.
 */
interface Deployment {
  env: Record<string, string>;
  /** `bulk`: a fill, whose commits need not wait for the disk (PostgreSQL's synchronous_commit off). */
  withStore<T>(f: (store: Store) => Promise<T>, options?: { bulk?: boolean }): Promise<T>;
  bytes(): Promise<number>;
  /**
   * The state of a database that has served for a while, after a fill: on PostgreSQL VACUUM ANALYZE;
   * on both, every table and index read through once, so that the OS holds them in its page cache
   * (see the note in createDeployment). Returns what was read through, for the report.
   */
  settle(): Promise<string>;
  close(): Promise<void>;
}

async function createDeployment(backend: 'sqlite' | 'postgres'): Promise<Deployment> {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-growth-'));
  const database: BenchDatabase | undefined = backend === 'postgres' ? await createBenchDatabase() : undefined;
  const dbPath = join(dataDir, 'authmd.db');
  const dbUrl = database?.url;
  return {
    env: { BENCH_DEMO_DATA_DIR: dataDir, BENCH_DEMO_PORT: String(await freePort()), ...(dbUrl ? { BENCH_DEMO_DATABASE_URL: dbUrl } : {}) },
    async withStore(f, options) {
      const url = dbUrl && options?.bulk ? `${dbUrl}?options=${encodeURIComponent('-c synchronous_commit=off')}` : dbUrl;
      // The fill's statements may wait behind PostgreSQL's checkpoints on a busy machine longer than a
      // request may (the store's 5 s): one did at 865,000 rows and ended the run. Setup, not measured.
      const bulkTimeout = options?.bulk ? { statementTimeoutMs: 120_000 } : {};
      const store = url ? createPostgresStore({ connectionString: url, ...bulkTimeout }) : createSqliteStore({ path: dbPath });
      try {
        await store.migrate(serviceTables);
        return await f(store);
      } finally {
        await store.close();
      }
    },
    bytes: () => (dbUrl ? postgresBytes(dbUrl) : Promise.resolve(fileBytes(dbPath))),
    settle: async () => {
      // This VM pages out file pages nobody touched for a minute (a DAMON `pageout` scheme: age 12 ×
      // 5 s, up to 128 MiB/s); a fill takes minutes, so much of the data was read back from disk in
      // the rounds (docs/decisions.md, "the runs of 2026-12-06, night"). A service whose database
      // fits in memory has it in the page cache.
      return dbUrl ? withPgClient(dbUrl, vacuumAndReadThrough) : readThrough(dbPath);
    },
    async close() {
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The demo children of the measured rounds time each request themselves too (demo-server.ts). */
const SERVER_TIMING = { BENCH_DEMO_SERVER_TIMING: '1' };

/** What measureOperations needs of a demo child: its URL, and its counters with its request times. */
function target(child: ServerChild) {
  return { base: child.url, stats: () => child.stats() };
}

/** The demo on each deployment, running together while `f` uses them. */
async function withDemos<T>(deployments: readonly Deployment[], env: Record<string, string>, f: (children: ServerChild[]) => Promise<T>): Promise<T> {
  const children: ServerChild[] = [];
  try {
    for (const deployment of deployments) children.push(await startServerChild(DEMO, { cwd: ROOT, env: { ...deployment.env, ...env } }));
    return await f(children);
  } finally {
    for (const child of children) await child.stop();
  }
}

/**
 * The resource and scopes of the demo's access tokens: the demo (migrating its store on the way)
 * registers and exchanges once, and the token's row is read back; the scopes after a claim are the
 * metadata's `scopes_supported`.
 */
async function learnTokenShape(deployment: Deployment): Promise<TokenShape> {
  const { accessToken, scopesSupported } = await withDemos([deployment], {}, async ([child]) => ({
    accessToken: await obtainToken(child!.url),
    scopesSupported: ((await expectJson(child!.url, { path: '/.well-known/oauth-authorization-server' })).scopes_supported ?? []) as string[],
  }));
  const row = await deployment.withStore((store) => store.get(accessTokens, secretKey(accessToken)));
  if (!row) throw new Error('the growth scenario could not find the access token the demo issued in its store');
  return { resource: row.resource, preClaimScope: row.scope, postClaimScope: scopesSupported.join(' ') || row.scope };
}

/** Keeps the secrets of about `count` unclaimed registrations spread evenly over the fill of `total`. */
function keepPlan(total: number, count: number, token: TokenShape): FillPlan {
  const stride = Math.max(4, Math.floor(total / count / 4) * 4);
  return { now: Date.now(), total, token, keep: (index) => index % stride === 0, kept: [] };
}

function fileBytes(path: string): number {
  let bytes = 0;
  for (const suffix of ['', '-wal']) {
    try {
      bytes += statSync(path + suffix).size;
    } catch {
      // no WAL file
    }
  }
  return bytes;
}

async function postgresBytes(url: string): Promise<number> {
  return withPgClient(url, async (client) => Number((await client.query<{ size: string }>('SELECT pg_database_size(current_database()) AS size')).rows[0]!.size));
}
