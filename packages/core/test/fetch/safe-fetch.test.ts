import { EventEmitter } from 'node:events';
import type { LookupAddress } from 'node:dns';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { safeFetch as exported, SafeFetchError as ExportedError, isSpecialUse as exportedIsSpecialUse } from '@authmd/core/fetch';
import { createSafeFetch, safeFetch, SafeFetchError, type SafeFetchErrorCode } from '../../src/fetch/safe-fetch.ts';
import { isSpecialUse } from '../../src/fetch/special-use.ts';
import { guardSocket, vettedLookup, type AddressPolicy, type Resolver } from '../../src/fetch/vetting.ts';
import { startLocalServer, type LocalServer } from '../../../../test-support/local-http-server.ts';

async function refusal(promise: Promise<unknown>): Promise<SafeFetchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SafeFetchError);
  const refused = error as SafeFetchError;
  expect(refused.message).not.toMatch(/[\r\n]/);
  expect(refused.message).not.toMatch(/\s+at\s/);
  return refused;
}

async function expectCode(promise: Promise<unknown>, code: SafeFetchErrorCode): Promise<SafeFetchError> {
  const error = await refusal(promise);
  expect(error.code, error.message).toBe(code);
  return error;
}

const fixed =
  (...addresses: string[]): Resolver =>
  async () =>
    addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 }));

describe('safeFetch refuses before connecting', () => {
  let server: LocalServer;
  beforeEach(async () => {
    server = await startLocalServer((_req, res) => res.end('secret'));
  });
  afterEach(() => server.close());

  it.each<[string, (port: number) => string, SafeFetchErrorCode]>([
    ['plain http', (port) => `http://127.0.0.1:${port}/`, 'insecure_url'],
    ['https to 127.0.0.1', (port) => `https://127.0.0.1:${port}/`, 'blocked_address'],
    ['https to 127.0.0.1 written as a number', (port) => `https://2130706433:${port}/`, 'blocked_address'],
    ['https to 127.0.0.1 written in hex', (port) => `https://0x7f.1:${port}/`, 'blocked_address'],
    ['https to ::1', (port) => `https://[::1]:${port}/`, 'blocked_address'],
    ['https to mapped 127.0.0.1', (port) => `https://[::ffff:127.0.0.1]:${port}/`, 'blocked_address'],
    ['a name resolving to loopback', (port) => `https://localhost:${port}/`, 'blocked_address'],
    ['userinfo', (port) => `https://user:pass@127.0.0.1:${port}/`, 'invalid_url'],
  ])('%s, even with a server listening there', async (_name, url, code) => {
    await expectCode(safeFetch(url(server.port)), code);
    expect(server.connections).toBe(0);
  });

  it.each<[string, SafeFetchErrorCode]>([
    ['https://169.254.169.254/latest/meta-data', 'blocked_address'],
    ['https://10.0.0.1/', 'blocked_address'],
    ['https://172.16.0.1/', 'blocked_address'],
    ['https://192.168.0.1/', 'blocked_address'],
    ['https://[fc00::1]/', 'blocked_address'],
    ['https://[fe80::1]/', 'blocked_address'],
    ['https://[64:ff9b::a9fe:a9fe]/', 'blocked_address'],
    ['https://0.0.0.0/', 'blocked_address'],
    ['https://user@example.com/', 'invalid_url'],
    ['https://:pass@example.com/', 'invalid_url'],
    ['http://example.com/', 'insecure_url'],
    ['ftp://example.com/file', 'invalid_url'],
    ['file:///etc/passwd', 'invalid_url'],
    ['not a url', 'invalid_url'],
    ['/relative', 'invalid_url'],
  ])('%s → %s', async (url, code) => {
    await expectCode(safeFetch(url, { timeoutMs: 1_000 }), code);
  });

  it('allowLoopback allows loopback, nothing else: not private ranges, not plain http elsewhere', async () => {
    await expectCode(safeFetch('https://10.0.0.1/', { allowLoopback: true }), 'blocked_address');
    await expectCode(safeFetch('https://169.254.169.254/', { allowLoopback: true }), 'blocked_address');
    await expectCode(safeFetch('http://10.0.0.1/', { allowLoopback: true }), 'insecure_url');
    await expectCode(safeFetch('http://93.184.216.34/', { allowLoopback: true }), 'insecure_url');
  });

  it('refuses a name when any one of its answers is special-use', async () => {
    const fetcher = createSafeFetch(fixed('93.184.216.34', '127.0.0.1'));
    await expectCode(fetcher(`https://mixed.example:${server.port}/`), 'blocked_address');
    // Under allowLoopback, plain http needs every answer to be loopback.
    const devFetcher = createSafeFetch(fixed('127.0.0.1', '10.0.0.1'));
    await expectCode(devFetcher(`http://dev.example:${server.port}/`, { allowLoopback: true }), 'insecure_url');
    expect(server.connections).toBe(0);
  });

  it('is what the @authmd/core/fetch subpath exports', () => {
    expect(exported).toBe(safeFetch);
    expect(ExportedError).toBe(SafeFetchError);
    expect(exportedIsSpecialUse).toBe(isSpecialUse);
  });
});

describe('safeFetch against a local server (allowLoopback)', () => {
  let server: LocalServer;
  afterEach(() => server?.close());

  it('fetches, with lowercased response headers', async () => {
    server = await startLocalServer((_req, res) => {
      res.setHeader('X-Mixed-Case', 'Yes');
      res.setHeader('Content-Type', 'application/json');
      res.end('{"ok":true}');
    });
    const response = await safeFetch(`${server.origin}/doc?x=1`, { allowLoopback: true, headers: { Accept: 'application/json' } });
    expect(response.status).toBe(200);
    expect(response.headers['x-mixed-case']).toBe('Yes');
    expect(response.headers['content-type']).toBe('application/json');
    expect(Object.keys(response.headers).every((name) => name === name.toLowerCase())).toBe(true);
    expect(response.body.toString()).toBe('{"ok":true}');
    expect(server.requests[0]).toMatchObject({ method: 'GET', url: '/doc?x=1', headers: { accept: 'application/json' } });
  });

  it('sends a POST body', async () => {
    server = await startLocalServer((_req, res) => res.end('done'));
    const response = await safeFetch(`${server.origin}/events`, {
      allowLoopback: true,
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt' },
      body: 'a.b.c',
    });
    expect(response.status).toBe(200);
    expect(server.requests[0]).toMatchObject({ method: 'POST', body: 'a.b.c', headers: { 'content-length': '5' } });
  });

  it('connects to the vetted address while Host keeps the name', async () => {
    server = await startLocalServer((req, res) => res.end(req.headers.host));
    const fetcher = createSafeFetch(fixed('127.0.0.1'));
    const response = await fetcher(`http://provider.example:${server.port}/jwks`, { allowLoopback: true });
    expect(response.body.toString()).toBe(`provider.example:${server.port}`);
    // Without allowLoopback the same answer is refused.
    await expectCode(fetcher(`https://provider.example:${server.port}/jwks`), 'blocked_address');
    expect(server.requests).toHaveLength(1);
  });

  it('returns a 500 as a status', async () => {
    server = await startLocalServer((_req, res) => {
      res.statusCode = 500;
      res.end('oops');
    });
    const response = await safeFetch(`${server.origin}/`, { allowLoopback: true });
    expect(response.status).toBe(500);
    expect(response.body.toString()).toBe('oops');
  });

  it.each([301, 302, 303, 307, 308])('does not follow a %i redirect', async (status) => {
    server = await startLocalServer((req, res) => {
      res.statusCode = req.url === '/start' ? status : 200;
      res.setHeader('Location', '/target');
      res.end('moved');
    });
    const error = await expectCode(safeFetch(`${server.origin}/start`, { allowLoopback: true }), 'redirect');
    expect(error.message).toContain(String(status));
    expect(server.requests.map((r) => r.url)).toEqual(['/start']);
  });

  it('times out a server that never answers, within about timeoutMs', async () => {
    server = await startLocalServer(() => {});
    const started = Date.now();
    await expectCode(safeFetch(`${server.origin}/`, { allowLoopback: true, timeoutMs: 300 }), 'timeout');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('times out a body that trickles in too slowly (the timeout covers the whole exchange)', async () => {
    server = await startLocalServer((_req, res) => {
      res.write('x');
      const drip = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(drip));
    });
    const started = Date.now();
    await expectCode(safeFetch(`${server.origin}/`, { allowLoopback: true, timeoutMs: 400 }), 'timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops reading an endless body at maxBytes, and drops the connection', async () => {
    let written = 0;
    server = await startLocalServer((_req, res) => {
      const chunk = Buffer.alloc(16 * 1024, 'a');
      const pump = () => {
        let more = true;
        while (!res.destroyed && more) {
          more = res.write(chunk);
          written += chunk.length;
        }
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    await expectCode(safeFetch(`${server.origin}/`, { allowLoopback: true, maxBytes: 64 * 1024 }), 'too_large');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Socket buffers hold a few MiB at most; reading on would have taken far more.
    expect(written).toBeLessThan(8 * 1024 * 1024);
  });

  it('counts a body without Content-Length', async () => {
    server = await startLocalServer((_req, res) => {
      res.write(Buffer.alloc(1_000, 'a'));
      res.end(Buffer.alloc(1, 'a'));
    });
    await expectCode(safeFetch(`${server.origin}/`, { allowLoopback: true, maxBytes: 1_000 }), 'too_large');
  });

  it('refuses a declared Content-Length over maxBytes without waiting for the body', async () => {
    server = await startLocalServer((_req, res) => {
      res.setHeader('Content-Length', '10000000');
      res.write('only the start');
    });
    await expectCode(safeFetch(`${server.origin}/`, { allowLoopback: true, maxBytes: 1_000, timeoutMs: 3_000 }), 'too_large');
  });

  it('accepts a body of exactly maxBytes', async () => {
    server = await startLocalServer((_req, res) => res.end(Buffer.alloc(1_000, 'a')));
    const response = await safeFetch(`${server.origin}/`, { allowLoopback: true, maxBytes: 1_000 });
    expect(response.body).toHaveLength(1_000);
  });

  it('reports a refused connection as a network error', async () => {
    server = await startLocalServer(() => {});
    const { origin } = server;
    await server.close();
    await expectCode(safeFetch(`${origin}/`, { allowLoopback: true }), 'network');
  });
});

describe('the vetted lookup', () => {
  const lookup = (policy: AddressPolicy, resolve: Resolver, all = false) =>
    new Promise<{ error: Error | null; address: unknown; family?: number | undefined }>((done) =>
      vettedLookup(policy, resolve)('provider.example', { all }, (error, address, family) => done({ error, address, family })),
    );

  it('passes on the vetted answers', async () => {
    expect(await lookup('public', fixed('93.184.216.34'))).toEqual({ error: null, address: '93.184.216.34', family: 4 });
    const all = await lookup('public', fixed('93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'), true);
    expect(all.address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
  });

  it.each([
    ['93.184.216.34', '127.0.0.1'],
    ['127.0.0.1', '93.184.216.34'],
    ['93.184.216.34', '::ffff:10.0.0.1'],
    ['2606:2800:220:1:248:1893:25c8:1946', 'fe80::1'],
  ])('refuses when any answer is special-use: %s, %s', async (...answers) => {
    const { error } = await lookup('public', fixed(...answers), true);
    expect(error).toBeInstanceOf(SafeFetchError);
    expect((error as SafeFetchError).code).toBe('blocked_address');
  });

  it('judges every resolution afresh (DNS rebinding: public first, private second)', async () => {
    let calls = 0;
    const rebinding: Resolver = async () => [{ address: ++calls === 1 ? '93.184.216.34' : '10.0.0.1', family: 4 }];
    const guarded = vettedLookup('public', rebinding);
    const resolveOnce = () =>
      new Promise<{ error: Error | null; address: unknown }>((done) => guarded('rebind.example', {}, (error, address) => done({ error, address })));
    expect(await resolveOnce()).toEqual({ error: null, address: '93.184.216.34' });
    const second = await resolveOnce();
    expect((second.error as SafeFetchError).code).toBe('blocked_address');
  });

  it('reports a name that does not resolve as a network error', async () => {
    const failing: Resolver = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.example'), { code: 'ENOTFOUND' });
    };
    const { error } = await lookup('public', failing);
    expect((error as SafeFetchError).code).toBe('network');
    expect((await lookup('public', fixed())).error).toBeInstanceOf(SafeFetchError);
  });
});

describe('the connect-time check', () => {
  class FakeSocket extends EventEmitter {
    connecting = true;
    destroyedWith: Error | undefined;
    constructor(public remoteAddress: string | undefined) {
      super();
    }
    destroy(error?: Error) {
      this.destroyedWith = error;
    }
  }

  it.each<[AddressPolicy, string, SafeFetchErrorCode | undefined]>([
    ['public', '93.184.216.34', undefined],
    ['public', '127.0.0.1', 'blocked_address'],
    ['public', '10.0.0.1', 'blocked_address'],
    ['public', '::ffff:169.254.169.254', 'blocked_address'],
    ['public', '::1', 'blocked_address'],
    ['public-or-loopback', '127.0.0.1', undefined],
    ['public-or-loopback', '192.168.0.1', 'blocked_address'],
    ['loopback-only', '127.0.0.1', undefined],
    ['loopback-only', '93.184.216.34', 'insecure_url'],
  ])('under %s, a socket connected to %s → %s', (policy, address, code) => {
    const socket = new FakeSocket(address);
    let connectedFirst = false;
    socket.on('connect', () => (connectedFirst = socket.destroyedWith === undefined));
    guardSocket(socket, policy);
    expect(socket.destroyedWith).toBeUndefined();
    socket.connecting = false;
    socket.emit('connect');
    expect((socket.destroyedWith as SafeFetchError | undefined)?.code).toBe(code);
    // The check runs before listeners registered earlier (the request's queued writes).
    if (code) expect(connectedFirst).toBe(false);
  });

  it('refuses a socket with no remote address, and checks at once one already connected', () => {
    const unknown = new FakeSocket(undefined);
    guardSocket(unknown, 'public');
    unknown.emit('connect');
    expect((unknown.destroyedWith as SafeFetchError).code).toBe('blocked_address');

    const connected = new FakeSocket('10.0.0.1');
    connected.connecting = false;
    guardSocket(connected, 'public');
    expect((connected.destroyedWith as SafeFetchError).code).toBe('blocked_address');
  });
});
