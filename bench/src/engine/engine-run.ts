import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { grantTypes, paths } from '@authmd/protocol';
import { createService, createSqliteStore, nodeMiddleware, silentLogger, type AuthmdService } from '@authmd/service';
import { startDemoProvider, type RunningDemoProvider } from '../../../examples/demo/src/provider/start.ts';
import { freePort } from '../../../test-support/free-port.ts';
import { processWrites, type ProcessWrites } from '../child.ts';
import { idJagRegistrationBodies } from '../id-jags.ts';

/**
 * One workload of the `engine` section, in a process of its own (engine.ts starts it): requests go
 * straight to `service.dispatch` on a fresh SQLite store, ENGINE_IN_FLIGHT at a time, so that what a
 * request costs the service itself (CPU, bytes and write calls, from process.cpuUsage and
 * /proc/self/io) is measured without HTTP, a load generator or another process in the numbers.
 * Settings (environment): ENGINE_WORKLOAD (anonymous, exchange, id-jag: each for a new account,
 * id-jag-returning: 100 accounts in turn, each linked by the warm-up), ENGINE_REQUESTS,
 * ENGINE_WARMUP, ENGINE_IN_FLIGHT; ENGINE_PROFILE, a file for a CPU profile of the measured run.
 * Prints one line of JSON.
 */

type Workload = 'anonymous' | 'exchange' | 'id-jag' | 'id-jag-returning';
const env = process.env;
const workload = env.ENGINE_WORKLOAD as Workload;
if (!['anonymous', 'exchange', 'id-jag', 'id-jag-returning'].includes(workload)) {
  throw new Error(`ENGINE_WORKLOAD must be anonymous, exchange, id-jag or id-jag-returning (got ${workload})`);
}
/** How many accounts the id-jag-returning workload's ID-JAGs speak for, in turn. */
const RETURNING_ACCOUNTS = 100;
const requests = Number(env.ENGINE_REQUESTS ?? 20_000);
const warmup = Number(env.ENGINE_WARMUP ?? 2_000);
const inFlight = Number(env.ENGINE_IN_FLIGHT ?? 32);

const dir = mkdtempSync(join(tmpdir(), 'authmd-bench-engine-'));
const port = await freePort();
const issuer = `http://127.0.0.1:${port}`;
// The provider (ID-JAG workload) fetches the service's metadata before it mints, so the service also listens.
const provider: RunningDemoProvider | undefined = workload.startsWith('id-jag') ? await startDemoProvider({ port: 0, dataDir: join(dir, 'provider'), serviceUrl: issuer }) : undefined;
const unlimited = { perIp: Number.MAX_SAFE_INTEGER, perService: Number.MAX_SAFE_INTEGER };
const service: AuthmdService = await createService({
  issuer,
  name: 'engine bench',
  summary: 'The service alone, without HTTP.',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  resources: [{ resource: `${issuer}/api/notes`, name: 'notes' }],
  store: createSqliteStore({ path: join(dir, 'service.db') }),
  logger: silentLogger,
  rateLimits: { anonymous: unlimited, service_auth: unlimited, identity_assertion: unlimited },
  mail: { outbox: true },
  ...(provider ? { trust: { issuers: [provider.trustEntry], allowLoopback: true } } : {}),
});
const server = createServer(nodeMiddleware(service));
await new Promise<void>((listening) => server.listen(port, '127.0.0.1', listening));

const encoder = new TextEncoder();
const post = (pathname: string, contentType: string, body: Uint8Array) => ({
  method: 'POST',
  pathname,
  query: () => undefined,
  header: (name: string) => (name === 'content-type' ? contentType : undefined),
  body: async () => body,
  clientIp: '127.0.0.1',
});
const anonymous = encoder.encode(JSON.stringify({ type: 'anonymous' }));
const register = () => post(paths.identity, 'application/json', anonymous);

/** The request the n-th call sends. */
let next: (n: number) => ReturnType<typeof post>;
if (workload === 'anonymous') next = register;
else if (workload === 'exchange') {
  const first = await service.dispatch(register());
  const assertion = (JSON.parse(first.body!) as { identity_assertion: string }).identity_assertion;
  const form = encoder.encode(new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString());
  next = () => post(paths.token, 'application/x-www-form-urlencoded', form);
} else {
  // A fresh ID-JAG per request, signed before anything is measured: each of a new user, or of the
  // returning accounts in turn (the warm-up links each of them first).
  const accounts = workload === 'id-jag-returning' ? RETURNING_ACCOUNTS : undefined;
  if (accounts !== undefined && warmup < accounts) throw new Error(`ENGINE_WARMUP must be at least ${accounts} for id-jag-returning`);
  const bodies = (await idJagRegistrationBodies(provider!, issuer, warmup + requests, 'engine', accounts)).map((body) => encoder.encode(body));
  next = (n) => post(paths.identity, 'application/json', bodies[n]!);
}

let sent = 0;
async function run(count: number): Promise<void> {
  const end = sent + count;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (sent < end) {
        const answer = await service.dispatch(next(sent++));
        if (answer.status !== 200 && answer.status !== 201) throw new Error(`${workload}: ${answer.status} ${answer.body}`);
      }
    }),
  );
}

/** Bytes passed to write calls and their number so far, this process's threads together (Linux). */
function written(): ProcessWrites {
  const writes = processWrites(process.pid);
  if (!writes) throw new Error('the engine section reads /proc/<pid>/io, which this system does not have');
  return writes;
}

await run(warmup);
const profiler = env.ENGINE_PROFILE ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}
const writesBefore = written();
const cpuBefore = process.cpuUsage();
const started = performance.now();
await run(requests);
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
const writesAfter = written();
if (profiler) writeFileSync(env.ENGINE_PROFILE!, JSON.stringify((await profiler.post('Profiler.stop')).profile));

process.stdout.write(
  `${JSON.stringify({
    workload,
    requests,
    requestsPerSecond: requests / seconds,
    cpuMicrosPerRequest: ((cpu.user + cpu.system) / requests),
    systemMicrosPerRequest: cpu.system / requests,
    writeBytesPerRequest: (writesAfter.bytes - writesBefore.bytes) / requests,
    writeCallsPerRequest: (writesAfter.calls - writesBefore.calls) / requests,
  })}\n`,
);
server.close();
await service.close();
await provider?.close();
rmSync(dir, { recursive: true, force: true });
