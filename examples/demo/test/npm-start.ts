import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** `npm start` in its own process, exactly as package.json has it, for tests of main.ts. */

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export const startScript = (): string => (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;

export interface StartedMain {
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
  exited: Promise<number | null>;
}

/**
 * Exactly the root `start` script. It must be one node process: the tsx binary would sit in between
 * and, on a busy machine, SIGKILL the demo 60 ms after relaying a SIGTERM (exit 143, the database never closed).
 */
export function startMain(env: Record<string, string>): StartedMain {
  const [command, ...args] = startScript().split(' ');
  expect(command).toBe('node');
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => ({ stdout, stderr }), exited };
}

/** Polls `check` until it gives something, the process exits, or 20 s pass. */
export async function waitFor<T>(check: () => T | null | undefined, exited: Promise<unknown>, what: string): Promise<T> {
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = check();
    if (found) return found;
    if (done || Date.now() > deadline) throw new Error(`no ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
