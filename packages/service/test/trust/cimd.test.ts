import { afterEach, describe, expect, it } from 'vitest';
import { safeFetch, SafeFetchError, type Fetcher } from '@authmd/core/fetch';
import { CimdError, CimdResolver, validateClientIdUrl, type CimdErrorReason, type CimdResolverOptions } from '../../src/trust/cimd.ts';
import { manualClock, startLocalServer, type LocalServer } from '../../../../test-support/local-http-server.ts';

const SECOND = 1_000;
const DAY = 86_400 * SECOND;
const publicKey = { kty: 'EC', crv: 'P-256', kid: 'k1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

const badUrls: [string, RegExp][] = [
  ['http://client.example/app', /https/],
  ['HTTPS://client.example/app', /https/],
  ['https:client.example/app', /https/],
  ['ftp://client.example/app', /https/],
  ['https://client.example', /path/],
  ['https://client.example/', /path/],
  ['https:///app', /host/],
  ['https://client.example/a/./b', /segments/],
  ['https://client.example/a/../b', /segments/],
  ['https://client.example/..', /segments/],
  ['https://client.example/a/%2e%2e/b', /segments/],
  ['https://client.example/a/%2E/b', /segments/],
  ['https://client.example/a/.%2e', /segments/],
  ['https://client.example/app#frag', /fragment/],
  ['https://client.example/app#', /fragment/],
  ['https://user@client.example/app', /user name/],
  ['https://user:pass@client.example/app', /user name/],
  ['https://client.example/app?x=1', /query/],
  ['https://client.example/app?', /query/],
  ['https://client.example\\app', /backslash/],
  ['https://client.example/a\\..\\b', /backslash/],
  ['https://client.example/a\tb', /control/],
  ['https://client.example/a\nb', /control/],
  ['https://client.example/a b', /whitespace/],
  ['https://client.example/a\u0000', /control/],
  ['https://clïent.example/app', /non-ASCII/],
  [' https://client.example/app', /whitespace/],
  ['https://client example/app', /whitespace/],
  ['https://[bad/app', /valid URL/],
  ['', /https/],
];

const goodUrls = ['https://client.example/app', 'https://client.example:8443/oauth/client.json', 'https://client.example/a/b/', 'https://192.0.2.1/app', 'https://client.example/.well/x..y'];

async function reason(promise: Promise<unknown>): Promise<CimdErrorReason> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CimdError);
  expect((error as Error).message).not.toMatch(/[\r\n]/);
  return (error as CimdError).reason;
}

describe('validateClientIdUrl', () => {
  it.each(badUrls)('refuses %j', (url, why) => {
    const problem = validateClientIdUrl(url);
    expect(problem).toMatch(why);
    expect(problem).toMatch(/^The client_id .*\.$/);
  });

  it.each(goodUrls)('accepts %s', (url) => {
    expect(validateClientIdUrl(url)).toBeUndefined();
  });

  it('accepts http only for loopback hosts, and only with allowLoopback', () => {
    for (const url of ['http://127.0.0.1:4000/client', 'http://[::1]:4000/client', 'http://localhost:4000/client']) {
      expect(validateClientIdUrl(url)).toMatch(/https/);
      expect(validateClientIdUrl(url, { allowLoopback: true })).toBeUndefined();
    }
    expect(validateClientIdUrl('http://10.0.0.1/client', { allowLoopback: true })).toMatch(/https/);
    expect(validateClientIdUrl('http://client.example/client', { allowLoopback: true })).toMatch(/https/);
    // The other rules still apply.
    expect(validateClientIdUrl('http://127.0.0.1:4000/', { allowLoopback: true })).toMatch(/path/);
    expect(validateClientIdUrl('http://127.0.0.1:4000/a/../b', { allowLoopback: true })).toMatch(/segments/);
  });
});

describe('CimdResolver', () => {
  let server: LocalServer | undefined;
  const clock = manualClock();
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const resolver = (options: Partial<CimdResolverOptions> = {}) => new CimdResolver({ fetcher: safeFetch, clock: clock.now, allowLoopback: true, ...options });

  /** Serves `document(clientId)` at /client; `clientId` is the URL it is served at. */
  async function serve(
    document: (clientId: string) => unknown,
    options: { status?: number; contentType?: string; cacheControl?: string; headers?: Record<string, string> } = {},
  ): Promise<string> {
    let clientId = '';
    server = await startLocalServer((_req, res) => {
      res.statusCode = options.status ?? 200;
      res.setHeader('Content-Type', options.contentType ?? 'application/json');
      if (options.cacheControl) res.setHeader('Cache-Control', options.cacheControl);
      for (const [name, value] of Object.entries(options.headers ?? {})) res.setHeader(name, value);
      const body = document(clientId);
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    });
    clientId = `${server.origin}/client`;
    return clientId;
  }

  it.each(badUrls)('fetches nothing for the invalid client_id %j', async (url) => {
    let calls = 0;
    const fetcher: Fetcher = async () => {
      calls += 1;
      throw new Error('must not be called');
    };
    expect(await reason(new CimdResolver({ fetcher, clock: clock.now, allowLoopback: true }).resolve(url))).toBe('invalid_client_id');
    expect(calls).toBe(0);
  });

  it('refuses an http loopback client_id without allowLoopback, before fetching', async () => {
    const clientId = await serve((id) => ({ client_id: id }));
    expect(await reason(resolver({ allowLoopback: false }).resolve(clientId))).toBe('invalid_client_id');
    expect(server!.connections).toBe(0);
  });

  it('resolves a valid document and caches it for the floor when it says nothing', async () => {
    const clientId = await serve((id) => ({ client_id: id, client_name: 'Agent', jwks: { keys: [publicKey] }, token_endpoint_auth_method: 'private_key_jwt' }));
    const cimd = resolver();
    const metadata = await cimd.resolve(clientId);
    expect(metadata).toEqual({ client_id: clientId, client_name: 'Agent', jwks: { keys: [publicKey] }, token_endpoint_auth_method: 'private_key_jwt' });
    expect(server!.requests[0]!.headers.accept).toBe('application/json');
    clock.advance(30 * SECOND - 1);
    expect(await cimd.resolve(clientId)).toBe(metadata);
    expect(server!.requests).toHaveLength(1);
    clock.advance(1);
    await cimd.resolve(clientId);
    expect(server!.requests).toHaveLength(2);
  });

  it.each([
    ['max-age=600', 600 * SECOND],
    ['max-age=5', 30 * SECOND],
    ['max-age=999999', DAY],
    ['no-store', 30 * SECOND],
  ])('honours Cache-Control %s within the bounds', async (cacheControl, lifetime) => {
    const clientId = await serve((id) => ({ client_id: id }), { cacheControl });
    const cimd = resolver();
    await cimd.resolve(clientId);
    clock.advance(lifetime - 1);
    await cimd.resolve(clientId);
    expect(server!.requests).toHaveLength(1);
    clock.advance(1);
    await cimd.resolve(clientId);
    expect(server!.requests).toHaveLength(2);
  });

  it('shares one fetch among concurrent resolutions of a URL', async () => {
    let clientId = '';
    server = await startLocalServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      setTimeout(() => res.end(JSON.stringify({ client_id: clientId })), 50);
    });
    clientId = `${server.origin}/client`;
    const cimd = resolver();
    const results = await Promise.all(Array.from({ length: 20 }, () => cimd.resolve(clientId)));
    expect(server.requests).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
  });

  it('accepts a +json content type with parameters', async () => {
    const clientId = await serve((id) => ({ client_id: id }), { contentType: 'application/oauth-client+json; charset=utf-8' });
    expect((await resolver().resolve(clientId)).client_id).toBe(clientId);
  });

  it.each<[string, (id: string) => unknown, CimdErrorReason]>([
    ['a different client_id', () => ({ client_id: 'https://other.example/client' }), 'invalid_document'],
    ['a client_id differing by a trailing slash', (id) => ({ client_id: `${id}/` }), 'invalid_document'],
    ['a client_id differing only in case', (id) => ({ client_id: id.toUpperCase() }), 'invalid_document'],
    ['no client_id', () => ({ client_name: 'Agent' }), 'invalid_document'],
    ['client_secret', (id) => ({ client_id: id, client_secret: 's3cret' }), 'invalid_document'],
    ['client_secret_expires_at', (id) => ({ client_id: id, client_secret_expires_at: 0 }), 'invalid_document'],
    ['client_secret_basic', (id) => ({ client_id: id, token_endpoint_auth_method: 'client_secret_basic' }), 'invalid_document'],
    ['client_secret_post', (id) => ({ client_id: id, token_endpoint_auth_method: 'client_secret_post' }), 'invalid_document'],
    ['client_secret_jwt', (id) => ({ client_id: id, token_endpoint_auth_method: 'client_secret_jwt' }), 'invalid_document'],
    ['a non-string token_endpoint_auth_method', (id) => ({ client_id: id, token_endpoint_auth_method: ['none'] }), 'invalid_document'],
    ['a non-string jwks_uri', (id) => ({ client_id: id, jwks_uri: 42 }), 'invalid_document'],
    ['jwks with a private key', (id) => ({ client_id: id, jwks: { keys: [{ ...publicKey, d: 'c2VjcmV0' }] } }), 'invalid_document'],
    ['jwks with a symmetric key', (id) => ({ client_id: id, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }), 'invalid_document'],
    ['jwks that is not a key set', (id) => ({ client_id: id, jwks: [publicKey] }), 'invalid_document'],
    ['both jwks and jwks_uri', (id) => ({ client_id: id, jwks: { keys: [publicKey] }, jwks_uri: 'https://client.example/jwks' }), 'invalid_document'],
    ['a JSON array', (id) => [{ client_id: id }], 'invalid_document'],
    ['JSON null', () => null, 'invalid_document'],
    ['a body that is not JSON', () => 'client_id=x', 'invalid_document'],
  ])('refuses a document with %s', async (_name, document, expected) => {
    const clientId = await serve(document);
    expect(await reason(resolver().resolve(clientId))).toBe(expected);
  });

  it.each(['text/html', 'text/plain', 'application/jsonp', 'application/x-www-form-urlencoded'])('refuses the content type %s', async (contentType) => {
    const clientId = await serve((id) => ({ client_id: id }), { contentType });
    expect(await reason(resolver().resolve(clientId))).toBe('invalid_document');
  });

  it.each([404, 500, 201, 204])('refuses status %i', async (status) => {
    const clientId = await serve((id) => (status === 204 ? '' : { client_id: id }), { status });
    expect(await reason(resolver().resolve(clientId))).toBe('http_status');
  });

  it('refuses a redirect without following it', async () => {
    const clientId = await serve((id) => ({ client_id: id }), { status: 302, headers: { Location: '/elsewhere' } });
    const error = await resolver()
      .resolve(clientId)
      .catch((e: unknown) => e);
    expect((error as CimdError).reason).toBe('fetch_failed');
    expect(((error as CimdError).cause as SafeFetchError).code).toBe('redirect');
    expect(server!.requests.map((r) => r.url)).toEqual(['/client']);
  });

  it('refuses a document over 5 KiB, and accepts one of exactly 5 KiB', async () => {
    let size = 5 * 1024 + 1;
    const clientId = await serve((id) => {
      const base = JSON.stringify({ client_id: id, client_name: '' });
      return JSON.stringify({ client_id: id, client_name: 'x'.repeat(size - base.length) });
    });
    const cimd = resolver();
    const error = await cimd.resolve(clientId).catch((e: unknown) => e);
    expect((error as CimdError).reason).toBe('fetch_failed');
    expect(((error as CimdError).cause as SafeFetchError).code).toBe('too_large');
    size = 5 * 1024;
    expect((await cimd.resolve(clientId)).client_name).toHaveLength(size - JSON.stringify({ client_id: clientId, client_name: '' }).length);
  });

  it('never caches an error or an invalid document', async () => {
    let served = 0;
    const clientId = await serve((id) => (++served === 1 ? { client_id: id, client_secret: 'x' } : { client_id: id }), { cacheControl: 'max-age=3600' });
    const cimd = resolver();
    expect(await reason(cimd.resolve(clientId))).toBe('invalid_document');
    expect((await cimd.resolve(clientId)).client_id).toBe(clientId);
    expect(server!.requests).toHaveLength(2);
  });

  it('keeps at most maxEntries documents, dropping the least recently used', async () => {
    server = await startLocalServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Cache-Control', 'max-age=3600');
      res.end(JSON.stringify({ client_id: `${server!.origin}${req.url}` }));
    });
    const url = (name: string) => `${server!.origin}/${name}`;
    const cimd = resolver({ maxEntries: 2 });
    await cimd.resolve(url('a'));
    await cimd.resolve(url('b'));
    await cimd.resolve(url('a')); // a is now the most recent
    await cimd.resolve(url('c')); // evicts b
    await cimd.resolve(url('a'));
    await cimd.resolve(url('b'));
    expect(server.requests.map((r) => r.url)).toEqual(['/a', '/b', '/c', '/b']);
  });
});
