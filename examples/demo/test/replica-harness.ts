import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { paths } from '@authmd/protocol';

/**
 * Replicas of the demo as separate Node processes (`npm start`, i.e. examples/demo/src/main.ts with
 * tsx's loader), and the few requests the multi-process tests make against them.
 */

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** A port that was free a moment ago (bound to 0, then released): the replicas need theirs before they start. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A fresh data directory, recorded in `dirs` for the caller to remove. */
export function tempDataDir(dirs: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-replica-'));
  dirs.push(dir);
  return dir;
}

export interface Replica {
  /** Where this process listens (not the issuer, for a replica other than the first). */
  url: string;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no shutdown work at all. */
  kill(): Promise<void>;
}

/** `npm start` as a separate Node process, until its banner is out. */
export async function startReplica(env: Record<string, string>): Promise<Replica> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'examples/demo/src/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 45_000;
  while (!stdout.includes('Ctrl+C')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`no banner:\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `http://127.0.0.1:${env.PORT}`, pid: child.pid!, stdout: () => stdout, stderr: () => stderr, stop, kill };
}

export function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The jwt-bearer exchange of an identity assertion, expected to succeed. */
export async function exchange(base: string, assertion: string): Promise<Record<string, any>> {
  const response = await fetch(base + paths.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
  });
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** The demo's notes API with a Bearer token. */
export function notes(base: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}/api/notes`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
}

/** RFC 7009 revocation of a token at one replica. */
export function revoke(base: string, token: string): Promise<Response> {
  return fetch(base + paths.revoke, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
}
