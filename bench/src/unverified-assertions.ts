import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test-support/free-port.ts';
import { startServerChild } from './child.ts';
import type { Request } from './load.ts';
import { obtainAssertion, tokenRequest } from './replicas.ts';

/**
 * The jwt-bearer exchange as a replica that did not mint the assertions sees it: every request brings
 * an assertion the service has never checked. The service remembers the assertions it signed and
 * those whose signature it verified (engine/verified-assertions.ts), so the `jwt-bearer exchange`
 * scenario, which sends one assertion over and over, never verifies a signature after the first
 * request. Here the assertions are minted by an earlier process on the same data directory and port
 * (the same keys, rows and issuer) and each is sent once, so each exchange verifies its ES256 signature: the cost an
 * exchange has without the memory of verified assertions.
 */
export interface UnverifiedAssertionsScenario {
  /** For the measured child: the data directory the minting process used. */
  env: Record<string, string>;
  prepare(base: string): Promise<Request>;
  close(): Promise<void>;
}

export async function startUnverifiedAssertionsScenario(count: number, demoScript: string, cwd: string): Promise<UnverifiedAssertionsScenario> {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-bench-assertions-'));
  // The same port too: the issuer is the demo's address, and an assertion names it.
  const env = { BENCH_DEMO_DATA_DIR: dataDir, BENCH_DEMO_PORT: String(await freePort()) };
  const assertions: string[] = [];
  try {
    const minter = await startServerChild(demoScript, { cwd, env });
    try {
      while (assertions.length < count) assertions.push(...(await Promise.all(Array.from({ length: 32 }, () => obtainAssertion(minter.url)))));
    } finally {
      await minter.stop();
    }
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    env,
    async prepare() {
      const [first, ...rest] = assertions.map((assertion) => tokenRequest(assertion));
      return { ...first!, bodies: rest.map((request) => request.body!) };
    },
    async close() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
