import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { grantTypes, paths } from '@authmd/protocol';
import { signInCodeIn, type MailboxMessage } from '../../../packages/conformance/src/human/browser.ts';

/**
 * Replicas of the demo as separate Node processes (`npm start`, i.e. examples/demo/src/main.ts with
 * tsx's loader), and the few requests the multi-process tests make against them.
 */

export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** A port that was free a moment ago (bound to 0, then released): the replicas need theirs before they start. */
export { freePort } from '../../../test-support/free-port.ts';

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

/** A Node process (tsx's loader) whose output is kept, once `ready` matched its stdout. */
interface NodeProcess {
  pid: number;
  match: RegExpExecArray;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, and its exit. */
  kill(): Promise<void>;
}

async function startNode(args: string[], env: Record<string, string>, ready: RegExp, within: number, what: string): Promise<NodeProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (running()) child.kill('SIGTERM');
    return exited;
  };
  const kill = async () => {
    if (running()) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + within;
  let match: RegExpExecArray | null;
  while (!(match = ready.exec(stdout))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`${what}:\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { pid: child.pid!, match, stdout: () => stdout, stderr: () => stderr, stop, kill };
}

/** `npm start` as a separate Node process, until its banner is out. */
export async function startReplica(env: Record<string, string>): Promise<Replica> {
  const started = await startNode(['examples/demo/src/main.ts'], env, /Ctrl\+C/, 45_000, 'no banner');
  return { url: `http://127.0.0.1:${env.PORT}`, pid: started.pid, stdout: started.stdout, stderr: started.stderr, stop: started.stop, kill: started.kill };
}

export function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** The jwt-bearer exchange of an identity assertion, expected to succeed. */
export async function exchange(base: string, assertion: string): Promise<Record<string, any>> {
  const response = await fetch(base + paths.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString(),
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

/** One poll of the claim grant (type-in): the agent asks whether the person has typed its code. */
export function pollClaim(base: string, claimToken: string): Promise<Response> {
  return fetch(base + paths.token, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.claim, claim_token: claimToken }).toString(),
  });
}

/**
 * The newest sign-in code mailed to `email`, from the dev mailbox of the replica that sent it (the
 * outbox is per process), waiting up to 5 s for it.
 */
export async function mailedSignInCode(replicaUrl: string, email: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const { messages } = (await (await fetch(`${replicaUrl}/dev/mailbox.json`)).json()) as { messages: MailboxMessage[] };
    const code = signInCodeIn(messages, email);
    if (code) return code;
    if (Date.now() > deadline) throw new Error(`no sign-in code for ${email} in ${replicaUrl}/dev/mailbox.json`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface ResourceServer {
  url: string;
  stderr(): string;
  stop(): Promise<void>;
}

export interface ResourceServerConfig {
  clientId: string;
  clientSecret: string;
  /** The RFC 8707 identifier its tokens must be bound to. */
  resource: string;
  introspectionUrl: string;
  issuer: string;
  guards: Record<string, { cacheMs: number; invalidationDatabaseUrl?: string }>;
}

/**
 * A resource server in a process of its own (packages/service/test/http/remote-resource-server.ts),
 * validating through RFC 7662 introspection: `GET <url>/<guard>/notes` per named guard. Resolves once
 * it printed its READY line.
 */
export async function startResourceServer(config: ResourceServerConfig): Promise<ResourceServer> {
  const script = join(repoRoot, 'packages/service/test/http/remote-resource-server.ts');
  const started = await startNode([script, JSON.stringify(config)], {}, /^READY (\S+)$/m, 20_000, 'the resource server did not start');
  return {
    url: started.match[1]!,
    stderr: started.stderr,
    stop: async () => {
      await started.stop();
    },
  };
}
