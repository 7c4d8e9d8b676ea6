import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type RunningDemo } from '../src/start.ts';

/**
 * DNS rebinding (issue 10): a page on evil.example makes its name resolve to 127.0.0.1, and the
 * browser then treats the demo as evil.example, same-origin, and lets the page read every answer,
 * `/dev/mailbox.json` with its sign-in codes included. Such requests carry `Host: evil.example`; the
 * demo, its service and its provider answer only their own host:port and refuse others with 421.
 * (fetch cannot set Host, so these requests go through node:http.)
 */

interface Answer {
  status: number;
  body: string;
}

function send(url: string, host: string | undefined, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...init.headers };
    if (host !== undefined) headers.host = host;
    const request = httpRequest(url, { method: init.method ?? 'GET', headers, timeout: 5000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`${url}: no answer within 5 s`)));
    request.on('error', reject);
    request.end(init.body);
  });
}

function expectMisdirected(answer: Answer, what: string): void {
  expect(answer.status, what).toBe(421);
  const body = JSON.parse(answer.body);
  expect(body.error, what).toBe('misdirected_request');
  expect(answer.body, what).not.toContain('messages');
}

const register = { method: 'POST', body: '{"type":"anonymous"}', headers: { 'content-type': 'application/json' } };
const dirs: string[] = [];
let demo: RunningDemo;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-demo-host-'));
  dirs.push(dir);
  demo = await startDemo({ port: 0, providerPort: 0, dataDir: dir, store: 'memory' });
});

afterAll(async () => {
  await demo?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('the demo answers only its own Host', () => {
  const foreign = () => ['evil.example', 'evil.example:8787', `evil.example:${demo.port}`, `127.0.0.1.evil.example:${demo.port}`, `127.0.0.1:${demo.port + 1}x`];

  it('refuses a foreign Host on the mailbox, the pages, the API and the protocol endpoints; answers its own, and localhost on its port', async () => {
    // a code in the mailbox, so that a leak would show
    const signIn = await fetch(`${demo.url}/login`);
    expect(signIn.status).toBe(200);
    for (const host of foreign()) {
      expectMisdirected(await send(`${demo.url}/dev/mailbox.json`, host), `mailbox.json, Host: ${host}`);
      expectMisdirected(await send(`${demo.url}/dev/mailbox`, host), `mailbox, Host: ${host}`);
      expectMisdirected(await send(`${demo.url}/api/notes`, host), `notes API, Host: ${host}`);
      expectMisdirected(await send(`${demo.url}/`, host), `home page, Host: ${host}`);
      expectMisdirected(await send(`${demo.url}/login`, host), `sign-in page, Host: ${host}`);
      expectMisdirected(await send(`${demo.url}/agent/identity`, host, register), `registration, Host: ${host}`);
    }
    for (const host of [new URL(demo.url).host, `localhost:${demo.port}`, `LOCALHOST:${demo.port}`]) {
      const mailbox = await send(`${demo.url}/dev/mailbox.json`, host);
      expect(mailbox.status, host).toBe(200);
      expect(JSON.parse(mailbox.body)).toHaveProperty('messages');
      expect((await send(`${demo.url}/api/notes`, host)).status, host).toBe(401);
      expect((await send(`${demo.url}/`, host)).status, host).toBe(200);
      expect((await send(`${demo.url}/agent/identity`, host, register)).status, host).toBe(200);
    }
  });

  it('the demo provider refuses a foreign Host and answers its own', async () => {
    const provider = demo.provider!;
    const paths = ['/', '/.well-known/jwks.json', '/grants'];
    for (const host of ['evil.example', 'evil.example:8788', `evil.example:${provider.port}`, new URL(demo.url).host]) {
      for (const path of paths) expectMisdirected(await send(`${provider.url}${path}`, host), `provider ${path}, Host: ${host}`);
    }
    for (const host of [new URL(provider.url).host, `localhost:${provider.port}`]) {
      expect((await send(`${provider.url}/`, host)).status, host).toBe(200);
      expect((await send(`${provider.url}/.well-known/jwks.json`, host)).status, host).toBe(200);
      expect((await send(`${provider.url}/grants`, host)).status, host).toBe(401);
    }
  });

  it('behind a proxy (publicUrl), answers the public host and the address it listens on, nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authmd-demo-host-'));
    dirs.push(dir);
    const proxied = await startDemo({ port: 0, dataDir: dir, store: 'memory', publicUrl: 'http://notes.proxy.test:8080' });
    try {
      const direct = `http://127.0.0.1:${proxied.port}`;
      for (const host of ['notes.proxy.test:8080', `127.0.0.1:${proxied.port}`]) {
        const mailbox = await send(`${direct}/dev/mailbox.json`, host);
        expect(mailbox.status, host).toBe(200);
        expect((await send(`${direct}/api/notes`, host)).status, host).toBe(401);
      }
      for (const host of ['evil.example', 'notes.proxy.test:8081', 'notes.proxy.test']) {
        expectMisdirected(await send(`${direct}/dev/mailbox.json`, host), `proxied mailbox, Host: ${host}`);
      }
    } finally {
      await proxied.close();
    }
  });
});
