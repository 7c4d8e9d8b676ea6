import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileCredentialStore } from '../../src/store/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..', '..');
const WRITERS = 3;
const UPDATES = 25; // per writer, on the shared record (and as many on its own)

interface Child {
  process: ChildProcess;
  output: string;
  exited: Promise<number | null>;
  waitFor(line: string): Promise<void>;
}

function start(script: string, args: string[]): Child {
  const child = spawn(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', join(here, 'fixtures', script), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const state: Child = {
    process: child,
    output: '',
    exited: new Promise((done) => child.on('exit', (code) => done(code))),
    waitFor: (line) =>
      new Promise((done, fail) => {
        const check = () => {
          if (state.output.split('\n').includes(line)) done();
        };
        child.stdout!.on('data', check);
        child.on('exit', () => (state.output.split('\n').includes(line) ? done() : fail(new Error(`${script} exited before "${line}": ${stderr}`))));
        check();
      }),
  };
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (state.output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return state;
}

let root: string;
let children: Child[] = [];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'authmd-cross-process-'));
});
afterEach(() => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill();
  children = [];
  rmSync(root, { recursive: true, force: true });
});

async function race(options: { writers: number; updates: number; staleLock?: boolean }): Promise<void> {
  const storeDir = join(root, 'store');
  const controlDir = join(root, 'control');
  mkdirSync(storeDir);
  mkdirSync(controlDir);
  const path = join(storeDir, 'credentials.json');
  const go = join(controlDir, 'go');
  const stop = join(controlDir, 'stop');
  if (options.staleLock) {
    // left by a process that died an hour ago: every writer finds it and races to take it over
    const then = new Date(Date.now() - 60 * 60_000);
    writeFileSync(`${path}.lock`, JSON.stringify({ pid: 2 ** 22 + 1, created_at: then.toISOString(), token: 'dead' }));
    utimesSync(`${path}.lock`, then, then);
  }

  const reader = start('reader.ts', [path, stop]);
  const writers = Array.from({ length: options.writers }, (_, i) => start('writer.ts', [path, go, `w${i}`, String(options.updates)]));
  children = [reader, ...writers];
  await Promise.all(children.map((child) => child.waitFor('ready')));

  writeFileSync(go, '');
  const codes = await Promise.all(writers.map((writer) => writer.exited));
  writeFileSync(stop, '');
  expect(await reader.exited).toBe(0);
  expect(codes).toEqual(Array(options.writers).fill(0));

  const report = JSON.parse(reader.output.trim().split('\n').at(-1)!) as { reads: number; parsed: number; bad: string[]; badCount: number };
  expect(report.bad).toEqual([]);
  expect(report.parsed).toBeGreaterThan(0); // it did see the file while they wrote

  const records = await new FileCredentialStore({ path }).list();
  expect(records['https://shared.example']!.registration_id).toBe(String(options.writers * options.updates));
  for (let i = 0; i < options.writers; i += 1) expect(records[`https://w${i}.example`]!.registration_id).toBe(String(options.updates));
  expect(Object.keys(records)).toHaveLength(options.writers + 1);
  expect(JSON.parse(readFileSync(path, 'utf8')).version).toBe(1);
  expect(readdirSync(storeDir)).toEqual(['credentials.json']); // no lock, temp or stale file left
  expect(existsSync(`${path}.lock`)).toBe(false);
}

describe('FileCredentialStore across processes', () => {
  it('loses no update, never exposes a partial file and leaves no lock or temp file behind', async () => {
    await race({ writers: WRITERS, updates: UPDATES });
  }, 60_000);

  it('lets exactly one of several processes take over a stale lock', async () => {
    await race({ writers: WRITERS, updates: 10, staleLock: true });
  }, 60_000);
});
