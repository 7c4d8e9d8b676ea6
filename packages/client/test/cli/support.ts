import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Io } from '../../src/cli/io.ts';
import { run } from '../../src/cli/run.ts';
import { startDemo, type RunningDemo } from '../../../../examples/demo/src/start.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const BIN = join(REPO_ROOT, 'packages/client/bin/authmd.js');

/**
 * The real demo (service + provider) on ephemeral ports, with its data in a temp dir. Its claim grant
 * asks for a poll every second instead of five: these tests wait for the CLI's polls, not check them.
 */
export async function startTestDemo(): Promise<{ demo: RunningDemo; close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-cli-demo-'));
  const demo = await startDemo({ port: 0, providerPort: 0, dataDir, pollIntervalSeconds: 1 });
  return {
    demo,
    async close() {
      await demo.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A fresh credential store path in a temp dir. */
export function tempStore(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-cli-store-'));
  return { path: join(dir, 'credentials.json'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What an `authmd` run has written so far, and a way to wait for some of it. */
abstract class CliOutput {
  stdout = '';
  stderr = '';
  abstract readonly done: Promise<CliResult>;
  private readonly waiters = new Set<() => void>();

  /** Resolves with the first match of `pattern` in stderr (or stdout), once it has been written. */
  async waitFor(pattern: RegExp, stream: 'stdout' | 'stderr' = 'stderr', timeoutMs = 15_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.done.then(() => (exited = true));
    for (;;) {
      const match = pattern.exec(this[stream]);
      if (match) return match;
      if (exited || Date.now() > deadline) {
        throw new Error(`${pattern} not seen on ${stream}${exited ? ' (the process exited)' : ''}.\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  protected append(stream: 'stdout' | 'stderr', chunk: string): void {
    this[stream] += chunk;
    for (const wake of [...this.waiters]) wake();
    this.waiters.clear();
  }
}

/** A running `authmd` process: its output so far, a way to wait for some of it, its stdin, its end. */
export class CliProcess extends CliOutput {
  readonly child: ChildProcessWithoutNullStreams;
  readonly done: Promise<CliResult>;

  constructor(args: string[], options: { store: string; env?: Record<string, string>; cwd?: string; command?: string[] }) {
    super();
    const [command, ...prefix] = options.command ?? [process.execPath, BIN];
    this.child = spawn(command!, [...prefix, ...args], { env: cliEnv(options), cwd: options.cwd ?? REPO_ROOT, stdio: 'pipe' });
    this.child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.append('stdout', chunk));
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.append('stderr', chunk));
    this.done = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  type(text: string): void {
    this.child.stdin.write(text);
  }
}

/**
 * `authmd <args>` running in this process: the `run` that bin/authmd.js calls, with pipes for stdout
 * and stderr, the same environment as `runCli`, and stdin a terminal to type on (`terminal`) or an
 * ended pipe. What the command does goes through this process's globals (its `fetch`, its timers).
 */
export class InProcessCli extends CliOutput {
  readonly done: Promise<CliResult & { code: number }>;
  private readonly stdin: PassThrough;

  constructor(args: string[], options: { store: string; env?: Record<string, string>; terminal?: boolean }) {
    super();
    const [stdout, stderr] = (['stdout', 'stderr'] as const).map((name) => {
      const stream = new PassThrough().setEncoding('utf8');
      stream.on('data', (chunk: string) => this.append(name, chunk));
      return stream;
    });
    this.stdin = options.terminal ? Object.assign(new PassThrough(), { isTTY: true }) : new PassThrough().end();
    const io: Io = {
      stdout: stdout as unknown as Io['stdout'],
      stderr: stderr as unknown as Io['stderr'],
      stdin: this.stdin as unknown as Io['stdin'],
      env: cliEnv(options),
    };
    this.done = run(args, io).then(async (code) => {
      await new Promise((resolve) => setImmediate(resolve));
      return { code, signal: null, stdout: this.stdout, stderr: this.stderr };
    });
  }

  type(text: string): void {
    this.stdin.write(text);
  }
}

/** The environment an `authmd` under test sees: this one, without the person's own settings, plus `env`. */
function cliEnv(options: { store: string; env?: Record<string, string> }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AUTHMD_STORE_PATH: options.store, NO_COLOR: '1' };
  delete env['AUTHMD_EMAIL'];
  delete env['AUTHMD_DEBUG'];
  return Object.assign(env, options.env);
}

/**
 * `authmd <args>` in this process, to its end (`InProcessCli`), with `typed` typed on its terminal
 * when given. For tests of what a command says and does; `runCli` for what only the real process shows.
 */
export async function runInProcess(args: string[], options: { store: string; env?: Record<string, string>; typed?: string }): Promise<CliResult & { code: number }> {
  const cli = new InProcessCli(args, { ...options, terminal: options.typed !== undefined });
  if (options.typed !== undefined) cli.type(options.typed);
  return cli.done;
}

/** Runs `authmd <args>` to its end (stdin closed at once unless `input` is given). */
export async function runCli(args: string[], options: { store: string; env?: Record<string, string>; input?: string; cwd?: string; command?: string[] }): Promise<CliResult> {
  const cli = new CliProcess(args, options);
  cli.child.stdin.end(options.input ?? '');
  return cli.done;
}

/** The verification link and (type-in) code in a hand-off the CLI printed. */
export function handoffOf(stderr: string): { link: string; userCode: string | undefined } {
  const link = /(https?:\/\/\S+\/claim\?token=\S+)/.exec(stderr)?.[1];
  if (!link) throw new Error(`no claim link in:\n${stderr}`);
  return { link, userCode: /type this code on the page: (\d{6})/.exec(stderr)?.[1] };
}
