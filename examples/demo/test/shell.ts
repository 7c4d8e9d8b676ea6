import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Tools the printed commands need; a test names the missing ones instead of failing obscurely. */
export function missingTools(): string[] {
  return ['bash', 'curl', 'node'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

export interface Run {
  /** What the block printed so far (stdout and stderr, interleaved as they arrived). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output, as soon as it appears. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** The block's last exit status and everything it printed, once it has finished. */
  done: Promise<{ status: number; output: string }>;
}

/**
 * One bash session, as a person has in a terminal: blocks of commands run one after another and
 * share variables. Each block is sourced from a file with stdin from /dev/null, exactly as written.
 */
export class Shell {
  private readonly child: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'authmd-shell-'));
  private text = '';
  private blocks = 0;
  private readonly listeners = new Set<() => void>();

  /** `env` replaces the environment (default: this process's); `cwd` is where the session starts. */
  constructor(options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn('bash', ['--noprofile', '--norc'], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env, cwd: options.cwd });
    const collect = (chunk: Buffer) => {
      this.text += chunk.toString('utf8');
      for (const listener of this.listeners) listener();
    };
    this.child.stdout!.on('data', collect);
    this.child.stderr!.on('data', collect);
  }

  /** Starts a block; `run(block).done` waits for it. */
  run(block: string): Run {
    const n = ++this.blocks;
    const file = join(this.dir, `block-${n}.sh`);
    writeFileSync(file, `${block}\n`);
    const start = this.text.length;
    const marker = `__block_${n}_done__`;
    this.child.stdin!.write(`source ${file} </dev/null; echo "${marker} $?"\n`);
    const output = () => this.text.slice(start).split(marker)[0]!;
    const waitFor = (pattern: RegExp, timeoutMs = 15_000) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(this.text.slice(start));
          if (!match) return false;
          this.listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
          return true;
        };
        const timer = setTimeout(() => {
          this.listeners.delete(check);
          reject(new Error(`block ${n} printed no ${pattern} within ${timeoutMs} ms; it printed:\n${this.text.slice(start)}`));
        }, timeoutMs);
        if (!check()) this.listeners.add(check);
      });
    const done = waitFor(new RegExp(`${marker} (\\d+)`), 30_000).then((match) => ({ status: Number(match[1]), output: output() }));
    return { output, waitFor, done };
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
