import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { paths } from '@authmd/protocol';
import { startDemoProvider, type RunningDemoProvider } from '../../examples/demo/src/provider/start.ts';
import { freePort } from '../../test-support/free-port.ts';
import type { Request } from './load.ts';

/**
 * Issue 13's ID-JAG registration, as in real use: a trusted provider (the demo provider, in this
 * process, with its own SQLite and its own key) has each user's consent and signs one fresh ID-JAG per
 * request, each for a user the service has never seen (a new `sub` and email: a first registration,
 * with its account provisioned just in time). Every ID-JAG is signed before the measured run, so the
 * load generator's signing is not measured; the service verifies each one (signature, audience,
 * freshness, single use) as it would any other.
 */
export interface IdJagScenario {
  /** For the service child: the port it must listen on (the provider names it as the audience) and its trust in the provider. */
  env: Record<string, string>;
  /** Once the service answers: consent and `count` ID-JAGs, the request that sends them in turn. */
  prepare(base: string): Promise<Request>;
  close(): Promise<void>;
}

export async function startIdJagScenario(count: number): Promise<IdJagScenario> {
  const port = await freePort();
  const serviceUrl = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-bench-provider-'));
  let provider: RunningDemoProvider;
  try {
    provider = await startDemoProvider({ port: 0, dataDir, serviceUrl });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const run = Date.now().toString(36);
  return {
    env: { BENCH_DEMO_PORT: String(port), BENCH_DEMO_TRUST_PROVIDER: JSON.stringify(provider.trustEntry) },
    async prepare(base) {
      // One more than the rotation: the bench sends the first request by hand before measuring.
      const [first, ...rest] = await idJagRegistrationBodies(provider, base, count + 1, `bench-${run}`);
      return { method: 'POST', path: paths.identity, headers: { 'content-type': 'application/json' }, body: first!, bodies: rest };
    },
    async close() {
      await provider.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * `count` bodies of `POST /agent/identity {type:"identity_assertion"}`, each with a fresh ID-JAG of a
 * new user (`<prefix>-<n>`, with a verified email) for `audience`, whose consent the provider records
 * first; or, with `accounts`, of that many users in turn (a new jti each time).
 */
export async function idJagRegistrationBodies(provider: RunningDemoProvider, audience: string, count: number, prefix: string, accounts?: number): Promise<string[]> {
  const authTime = Math.floor(Date.now() / 1000);
  const bodies: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${prefix}-${accounts === undefined ? i : i % accounts}`;
    if (accounts === undefined || i < accounts) await provider.provider.grants.create(id, { audience, mode: 'always' });
    const { assertion } = await provider.provider.mintIdJag({ user: { id, email: `${id}@bench.example`, emailVerified: true, authTime }, audience });
    bodies.push(JSON.stringify({ type: 'identity_assertion', assertion }));
  }
  return bodies;
}
