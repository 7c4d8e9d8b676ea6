import { grantTypes } from '@authmd/protocol';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../src/settings.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { walkthrough } from '../src/walkthrough.ts';
import { Human } from './human.ts';

import { startMain, waitFor } from './npm-start.ts';
import { tempDirs } from '../../../test-support/temp-dirs.ts';
const tempDir = tempDirs('authmd-demo-');

function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function register(base: string): Promise<{ id: string; assertion: string; claimToken: string }> {
  const response = await postJson(`${base}/agent/identity`, { type: 'anonymous' });
  expect(response.status).toBe(200);
  const body = await response.json();
  return { id: body.id, assertion: body.identity.assertion, claimToken: body.claim.token };
}

async function exchange(base: string, assertion: string): Promise<Response> {
  return fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: grantTypes.jwtBearer, assertion }).toString(),
  });
}

async function accessToken(base: string, assertion: string): Promise<{ token: string; scope: string }> {
  const response = await exchange(base, assertion);
  expect(response.status).toBe(200);
  const body = await response.json();
  return { token: body.access_token, scope: body.scope };
}

function notes(base: string, token: string | undefined, init: RequestInit = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (token) headers.authorization = `Bearer ${token}`;
  return fetch(`${base}/api/notes`, { ...init, headers });
}

function postNote(base: string, token: string, body: string, contentType = 'application/json'): Promise<Response> {
  return notes(base, token, { method: 'POST', body, headers: { 'content-type': contentType } });
}

/**
 * Claims a registration the way a human does it (read-back): the agent starts a claim for the
 * human's email, the human signs in and presses Authorize, the agent sends the page's code. Returns
 * the new assertion, which now carries notes.write.
 */
async function claim(base: string, human: Human, registration: { claimToken: string }): Promise<string> {
  const started = await postJson(`${base}/agent/identity/claim`, { type: 'service_auth', claim_token: registration.claimToken, login_hint: human.email });
  expect(started.status).toBe(200);
  const code = await human.authorize(await human.openClaimLink((await started.json()).attempt.verification_uri));
  const completed = await postJson(`${base}/agent/identity/claim/complete`, { claim_token: registration.claimToken, user_code: code });
  expect(completed.status).toBe(200);
  return (await completed.json()).identity.assertion;
}

describe('the demo over HTTP', () => {
  let demo: RunningDemo;
  let base: string;

  beforeAll(async () => {
    demo = await startDemo({ port: 0, dataDir: join(tempDir(), 'data') });
    base = demo.url;
  });
  afterAll(() => demo?.close());

  it('serves a self-contained home page whose links all answer 200', async () => {
    const response = await fetch(`${base}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');

    const html = await response.text();
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\ssrc=/i);
    expect(html).toContain('6-digit code');
    expect(html).toContain(`curl -i ${base}/api/notes`);
    expect(html).not.toContain('later version');

    const links = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&'));
    expect(links).toEqual(
      expect.arrayContaining([
        `${base}/auth.md`,
        `${base}/.well-known/oauth-protected-resource`,
        `${base}/.well-known/oauth-authorization-server`,
        `${base}/.well-known/jwks.json`,
        `${base}/dev/mailbox`,
      ]),
    );
    for (const link of links) {
      expect(new URL(link).origin, link).toBe(base);
      const linked = await fetch(link);
      expect(linked.status, link).toBe(200);
    }
  });

  it('answers the API without a token with a 401 challenge pointing at the metadata that names exactly that URL (RFC 9728 §3.3)', async () => {
    const response = await notes(base, undefined);
    expect(response.status).toBe(401);
    const metadataUrl = `${base}/.well-known/oauth-protected-resource/api/notes`;
    expect(response.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${metadataUrl}"`);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect((await response.json()).error).toBe('unauthorized');
    const metadata = await (await fetch(metadataUrl)).json();
    expect(metadata).toMatchObject({ resource: `${base}/api/notes`, authorization_servers: [base] });
    // The same at the root, for clients that look only there.
    expect(await (await fetch(`${base}/.well-known/oauth-protected-resource`)).json()).toEqual(metadata);
  });

  it('walks register → exchange → list → write refused before a claim', async () => {
    const { assertion } = await register(base);
    const { token, scope } = await accessToken(base, assertion);
    expect(scope).toBe('notes.read');

    const listed = await notes(base, token);
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({ notes: [] });

    const write = await postNote(base, token, JSON.stringify({ text: 'hello' }));
    expect(write.status).toBe(403);
    expect(write.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect((await write.json()).error).toBe('insufficient_scope');
  });

  it('the walkthrough it prints runs as written in bash', async () => {
    const missing = ['bash', 'curl'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
    expect(missing, 'the printed walkthrough needs these tools on this machine').toEqual([]);
    const script = ['set -e', ...walkthrough(base).map((step) => step.command), 'echo', 'echo "assertion-length=${#ASSERTION}"'].join('\n');
    const run = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const child = spawn('bash', ['-c', script]);
      let stdout = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.on('close', (status) => resolve({ status, stdout }));
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('{"notes":[]}');
    expect(run.stdout).toMatch(/HTTP\/1\.1 403/);
    expect(run.stdout).toContain('"error":"insufficient_scope"');
    expect(run.stdout).toMatch(/assertion-length=[1-9]\d{2,}/);
  });

  it('adds notes once notes.write is held, keyed by the claiming user', async () => {
    const alice = new Human(base, 'alice@example.com');
    const { token, scope } = await accessToken(base, await claim(base, alice, await register(base)));
    expect(scope).toBe('notes.read notes.write');

    const created = await postNote(base, token, JSON.stringify({ text: '  buy milk  ' }));
    expect(created.status).toBe(201);
    const { note } = await created.json();
    expect(note).toMatchObject({ text: 'buy milk' });
    expect(note.id).toMatch(/^note_/);
    expect(await (await notes(base, token)).json()).toEqual({ notes: [note] });

    // Another agent of the same user sees the same notes; an unclaimed stranger sees none.
    const second = await claim(base, alice, await register(base));
    expect(await (await notes(base, (await accessToken(base, second)).token)).json()).toEqual({ notes: [note] });
    const stranger = await accessToken(base, (await register(base)).assertion);
    expect(await (await notes(base, stranger.token)).json()).toEqual({ notes: [] });
  });

  it('refuses bad note bodies with 400 JSON, and oversized ones with 413', async () => {
    const { token } = await accessToken(base, await claim(base, new Human(base, 'bob@example.com'), await register(base)));

    const bad: [string, string][] = [
      ['not json', 'application/json'],
      ['[1,2]', 'application/json'],
      ['"text"', 'application/json'],
      ['{}', 'application/json'],
      ['{"text":5}', 'application/json'],
      ['{"text":"   "}', 'application/json'],
      [JSON.stringify({ text: 'x'.repeat(1001) }), 'application/json'],
      ['{"text":"hi"}', 'text/plain'],
    ];
    for (const [body, type] of bad) {
      const response = await postNote(base, token, body, type);
      expect(response.status, body.slice(0, 30)).toBe(400);
      expect(response.headers.get('content-type')).toBe('application/json');
      const json = await response.json();
      expect(json.error).toBe('invalid_request');
      expect(json.error_description).toEqual(expect.any(String));
    }
    expect((await postNote(base, token, JSON.stringify({ text: 'é'.repeat(1000) }))).status).toBe(201);

    const huge = await postNote(base, token, JSON.stringify({ text: 'x'.repeat(17 * 1024) }));
    expect(huge.status).toBe(413);
    expect((await huge.json()).error).toBe('payload_too_large');
    expect(await (await notes(base, token)).json()).toMatchObject({ notes: [{ text: 'é'.repeat(1000) }] });
  });

  it('answers unknown paths and methods with JSON', async () => {
    const missing = await fetch(`${base}/nowhere`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toBe('not_found');
    const wrongMethod = await fetch(`${base}/api/notes`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD, POST');
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('the demo on disk', () => {
  it('creates the data directory and the SQLite file', async () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    expect(existsSync(dataDir)).toBe(false);
    const demo = await startDemo({ port: 0, dataDir });
    try {
      expect(demo.dbPath).toBe(join(dataDir, 'authmd.db'));
      expect(existsSync(demo.dbPath)).toBe(true);
    } finally {
      await demo.close();
    }
  });

  it('keeps registrations and keys across a restart on the same data directory', async () => {
    const dataDir = tempDir();
    const first = await startDemo({ port: 0, dataDir });
    const { assertion } = await register(first.url);
    const jwks = await (await fetch(`${first.url}/.well-known/jwks.json`)).json();
    await first.close();

    // Same port, so the same issuer: the assertion names it.
    const second = await startDemo({ port: first.port, dataDir });
    try {
      expect(second.url).toBe(first.url);
      expect(await (await fetchAfterRestart(`${second.url}/.well-known/jwks.json`)).json()).toEqual(jwks);
      const { token } = await accessToken(second.url, assertion);
      const listed = await notes(second.url, token);
      expect(listed.status).toBe(200);
      expect(await listed.json()).toEqual({ notes: [] });
    } finally {
      await second.close();
    }
  });

  it('rejects with EADDRINUSE when the port is taken', async () => {
    const blocker = await listening(createServer());
    try {
      const port = (blocker.address() as AddressInfo).port;
      await expect(startDemo({ port, dataDir: tempDir() })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

describe('settings from the environment', () => {
  it('defaults to 127.0.0.1:8787, the provider on the next port, ./data under the current directory, and operator@example.com as the console\'s operator', () => {
    expect(readSettings({}, '/srv/app')).toEqual({
      ok: true,
      settings: { port: 8787, providerPort: 8788, host: '127.0.0.1', dataDir: '/srv/app/data', public: false, logFormat: 'text', admin: { operators: ['operator@example.com'] } },
    });
    expect(readSettings({ PORT: '0', AUTHMD_DATA_DIR: 'state' }, '/srv/app')).toMatchObject({ ok: true, settings: { port: 0, providerPort: 0, dataDir: '/srv/app/state' } });
    expect(readSettings({ PORT: '9000', PROVIDER_PORT: '9100' }, '/')).toMatchObject({ ok: true, settings: { port: 9000, providerPort: 9100 } });
    expect(readSettings({ PORT: '9000', PROVIDER_PORT: '9000' }, '/')).toMatchObject({ ok: false });
  });

  it('trusts authmd check\'s test provider only when AUTHMD_DEMO_TRUST_TEST_PROVIDER says so', () => {
    expect(readSettings({ AUTHMD_DEMO_TRUST_TEST_PROVIDER: '1' }, '/')).toMatchObject({ ok: true, settings: { testProviderPort: 8790 } });
    expect(readSettings({ AUTHMD_DEMO_TRUST_TEST_PROVIDER: '9123' }, '/')).toMatchObject({ ok: true, settings: { testProviderPort: 9123 } });
    for (const value of ['yes', '0', '70000']) {
      const refused = readSettings({ AUTHMD_DEMO_TRUST_TEST_PROVIDER: value }, '/');
      expect(refused.ok, value).toBe(false);
      expect(!refused.ok && refused.message).toContain('AUTHMD_DEMO_TRUST_TEST_PROVIDER must be 1');
    }
  });

  it('refuses a non-loopback HOST unless AUTHMD_DEMO_ALLOW_PUBLIC=1, and a bad PORT', () => {
    const refused = readSettings({ HOST: '0.0.0.0' }, '/');
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.message).toContain('AUTHMD_DEMO_ALLOW_PUBLIC=1');
    expect(readSettings({ HOST: '0.0.0.0', AUTHMD_DEMO_ALLOW_PUBLIC: '1' }, '/')).toMatchObject({ ok: true, settings: { public: true } });
    expect(readSettings({ HOST: 'localhost' }, '/')).toMatchObject({ ok: true, settings: { public: false } });
    for (const PORT of ['abc', '-1', '65536', '80.5']) expect(readSettings({ PORT }, '/').ok, PORT).toBe(false);
  });
});

describe('npm start (main.ts in its own process)', () => {
  it('prints the URL and the curl line, serves auth.md, and exits 0 on SIGTERM', async () => {
    const dataDir = tempDir();
    const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: dataDir });
    try {
      const [, url] = await waitFor(() => /Home page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(main.output().stdout), main.exited, 'home page URL');
      const { stdout } = main.output();
      expect(stdout).toContain(`curl -i ${url}/api/notes`);
      expect(stdout).toContain(`${url}/auth.md`);
      expect(stdout).toContain(`${url}/.well-known/oauth-protected-resource`);
      expect(stdout).toContain(join(dataDir, 'authmd.db'));
      expect(stdout).toContain(`${url}/dev/mailbox`);
      expect(stdout).toContain('Authorize');
      expect(stdout).not.toContain('later version');

      const authMd = await fetch(`${url}/auth.md`);
      expect(authMd.status).toBe(200);
      expect(authMd.headers.get('content-type')).toContain('text/markdown');
      expect(await authMd.text()).toContain('authmd demo notes');
    } finally {
      main.child.kill('SIGTERM');
    }
    expect(await main.exited).toBe(0);
  });

  it('logs one line per request, readable by default and as pino-format JSON with AUTHMD_LOG_FORMAT=json, with the id the answer carries', async () => {
    for (const format of ['text', 'json'] as const) {
      const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_LOG_FORMAT: format });
      try {
        const [, url] = await waitFor(() => /Home page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(main.output().stdout), main.exited, 'home page URL');
        const answer = await fetch(`${url}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' });
        const id = answer.headers.get('x-request-id')!;
        const line = await waitFor(() => main.output().stderr.split('\n').find((l) => l.includes(id)), main.exited, `the request line of ${id}`);
        if (format === 'json') {
          expect(JSON.parse(line)).toMatchObject({ level: 30, msg: 'request', request_id: id, method: 'POST', path: '/agent/identity', status: 200, client_ip: '127.0.0.1' });
        } else {
          expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d request request_id=${id} method=POST path=/agent/identity status=200 duration_ms=[\\d.]+ client_ip=127\\.0\\.0\\.1$`));
        }
      } finally {
        main.child.kill('SIGTERM');
      }
      expect(await main.exited).toBe(0);
    }
    const refused = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_LOG_FORMAT: 'yaml' });
    expect(await refused.exited).toBe(1);
    expect(refused.output().stderr).toContain('AUTHMD_LOG_FORMAT must be text or json (got "yaml")');
  });

  it('exits 1 naming PORT=… when the port is taken', async () => {
    const blocker = await listening(createServer());
    try {
      const port = (blocker.address() as AddressInfo).port;
      const main = startMain({ PORT: String(port), AUTHMD_DATA_DIR: tempDir() });
      expect(await main.exited).toBe(1);
      expect(main.output().stderr).toContain(`Port ${port} (PORT) is already in use`);
      expect(main.output().stderr).toMatch(/PORT=\d+ npm start/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('exits 1 naming PROVIDER_PORT=… when the provider\'s port is taken', async () => {
    const blocker = await listening(createServer());
    try {
      const port = (blocker.address() as AddressInfo).port;
      const main = startMain({ PORT: '0', PROVIDER_PORT: String(port), AUTHMD_DATA_DIR: tempDir() });
      expect(await main.exited).toBe(1);
      expect(main.output().stderr).toContain(`Port ${port} (PROVIDER_PORT) is already in use`);
      expect(main.output().stderr).toMatch(/PROVIDER_PORT=\d+ npm start/);
      expect(main.output().stderr).not.toMatch(/\bPORT=\d+ npm start/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('exits 1 with one line naming AUTHMD_DATA_DIR when it is a file, or a directory it cannot write (not a port)', async () => {
    const file = join(tempDir(), 'data');
    writeFileSync(file, '');
    for (const [dataDir, problem] of [
      [file, `AUTHMD_DATA_DIR is ${file}, which is a file, not a directory.`],
      ['/sys/kernel', 'Cannot write in the data directory /sys/kernel (AUTHMD_DATA_DIR): permission denied.'],
    ]) {
      const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: dataDir! });
      expect(await main.exited).toBe(1);
      const { stderr } = main.output();
      expect(stderr).toContain(`The demo could not start: ${problem} Set AUTHMD_DATA_DIR to a directory`);
      expect(stderr, 'no stack trace, and not mistaken for a port it may not listen on').not.toMatch(/\n\s+at |listen/);
    }
  });

  it('refuses a public HOST without AUTHMD_DEMO_ALLOW_PUBLIC=1', async () => {
    const main = startMain({ PORT: '0', HOST: '0.0.0.0', AUTHMD_DATA_DIR: tempDir() });
    expect(await main.exited).toBe(1);
    expect(main.output().stderr).toContain('AUTHMD_DEMO_ALLOW_PUBLIC=1');
  });
});

/**
 * fetch pools keep-alive sockets per origin; the first request after a restart on the same port may
 * pick a socket the old server closed before fetch noticed. Such a request never reached a server,
 * so it is sent once more.
 */
async function fetchAfterRestart(url: string): Promise<Response> {
  try {
    return await fetch(url);
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw error;
    return fetch(url);
  }
}

function listening(server: Server): Promise<Server> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
