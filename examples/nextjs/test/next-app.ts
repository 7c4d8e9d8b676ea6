import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testProviderTrustEntry } from '@authmd/conformance';
import type { ExampleApp, ExampleAppOptions } from '../../../test-support/example-apps.ts';

/** The example app's folder, which `next dev` serves (and writes its .next/ into). */
const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
const NEXT_BIN = join(dirname(createRequire(import.meta.url).resolve('next/package.json')), 'dist/bin/next');
const READY_WITHIN_MS = 90_000;
const STOP_WITHIN_MS = 10_000;

/**
 * The Next.js example as a person runs it, in its own process: `next dev` on 127.0.0.1:`port`, the
 * service configured through the environment (src/lib/authmd.ts). Ready once the service answers its
 * discovery document (which also compiles the catch-all route). `close` ends the whole process group:
 * `next dev` runs the server in a child process of its own.
 */
export async function startNextApp(options: ExampleAppOptions): Promise<ExampleApp> {
  const url = `http://127.0.0.1:${options.port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NEXT_TELEMETRY_DISABLED: '1',
    PORT: String(options.port),
    AUTHMD_PUBLIC_URL: url,
    AUTHMD_DATABASE: options.database,
    AUTHMD_TRUST_TEST_PROVIDER: testProviderPort(options.trust),
  };
  // Vitest's NODE_ENV=test is not one Next knows; `next dev` sets development itself.
  delete env.NODE_ENV;
  if (env.AUTHMD_TRUST_TEST_PROVIDER === undefined) delete env.AUTHMD_TRUST_TEST_PROVIDER;

  // Run from the database's (temporary) folder: in a container Next keeps a telemetry `cache/` folder
  // in its working directory even with telemetry off, and it belongs there rather than in the example.
  const child = spawn(process.execPath, [NEXT_BIN, 'dev', APP_DIR, '--hostname', '127.0.0.1', '--port', String(options.port)], {
    cwd: dirname(options.database),
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // Should the test process exit without closing the app (after a hook timed out, say), the server goes too.
  const orphanGuard = () => signal(-child.pid!, 'SIGKILL');
  process.once('exit', orphanGuard);
  const close = async () => {
    await stopGroup(child);
    process.off('exit', orphanGuard);
  };

  try {
    await waitUntilReady(url, child, () => output.join(''));
  } catch (error) {
    await close();
    throw error;
  }
  return { url, close };
}

/** The port of the one test provider to trust, as src/lib/authmd.ts takes it; undefined for none. */
function testProviderPort(trust: ExampleAppOptions['trust']): string | undefined {
  if (!trust || trust.issuers.length === 0) return undefined;
  const [entry] = trust.issuers;
  const port = Number(new URL(entry!.issuer).port);
  if (trust.issuers.length !== 1 || !trust.allowLoopback || JSON.stringify(entry) !== JSON.stringify(testProviderTrustEntry(port))) {
    throw new Error('the Next.js example trusts one thing only: the conformance test provider on loopback (AUTHMD_TRUST_TEST_PROVIDER)');
  }
  return String(port);
}

async function waitUntilReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + READY_WITHIN_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`next dev exited before it answered:\n${log()}`);
    const status = await fetch(`${url}/.well-known/oauth-authorization-server`).then(
      (response) => response.status,
      () => 0,
    );
    if (status === 200) return;
    // Anything but "not listening yet" (a 500 from a service that cannot start, say) will not get better.
    if (status !== 0) throw new Error(`next dev answered ${status} for the service's metadata:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`next dev did not answer within ${READY_WITHIN_MS / 1000} s:\n${log()}`);
}

/** SIGTERM to the process group, SIGKILL to whatever of it is left after STOP_WITHIN_MS. */
async function stopGroup(child: ChildProcess): Promise<void> {
  const group = -child.pid!;
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit').then(() => undefined);
  signal(group, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WITHIN_MS)))]);
  clearTimeout(timer);
  // The server next dev started may outlive it: the group goes in any case.
  signal(group, 'SIGKILL');
  await exited;
}

function signal(group: number, name: NodeJS.Signals): void {
  try {
    process.kill(group, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
