import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { safeFetch, SafeFetchError } from '@authmd/core/fetch';
import { JwksCache, JwksError, type JwksCacheOptions, type JwksErrorReason } from '../../src/trust/jwks-cache.ts';
import { manualClock, startLocalServer, type LocalServer } from '../../../../test-support/local-http-server.ts';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

const ecKey = { kty: 'EC', crv: 'P-256', kid: 'k1', alg: 'ES256', use: 'sig', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
const rsaKey = { kty: 'RSA', kid: 'k2', alg: 'RS256', n: 'sXch', e: 'AQAB' };

interface Reply {
  status?: number;
  cacheControl?: string;
  age?: string;
  body?: unknown;
  delayMs?: number;
}

/** A JWKS endpoint whose next answers the test sets; the last one repeats. */
async function jwksServer(...replies: Reply[]): Promise<LocalServer & { uri: string }> {
  let served = 0;
  const server = await startLocalServer((_req, res: ServerResponse) => {
    const reply = replies[Math.min(served++, replies.length - 1)] ?? {};
    const send = () => {
      res.statusCode = reply.status ?? 200;
      res.setHeader('Content-Type', 'application/jwk-set+json');
      if (reply.cacheControl) res.setHeader('Cache-Control', reply.cacheControl);
      if (reply.age) res.setHeader('Age', reply.age);
      res.end(typeof reply.body === 'string' ? reply.body : JSON.stringify('body' in reply ? reply.body : { keys: [ecKey] }));
    };
    if (reply.delayMs) setTimeout(send, reply.delayMs);
    else send();
  });
  return Object.assign(server, { uri: `${server.origin}/.well-known/jwks.json` });
}

async function reason(promise: Promise<unknown>): Promise<JwksErrorReason> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(JwksError);
  expect((error as Error).message).not.toMatch(/[\r\n]/);
  return (error as JwksError).reason;
}

describe('JwksCache', () => {
  let server: LocalServer & { uri: string };
  const clock = manualClock();
  const cache = (options: Partial<JwksCacheOptions> = {}) => new JwksCache({ fetcher: safeFetch, clock: clock.now, allowLoopback: true, ...options });
  afterEach(() => server?.close());

  it('serves from cache for max-age, then fetches again', async () => {
    server = await jwksServer({ cacheControl: 'public, max-age=3600' });
    const jwks = cache();
    expect(await jwks.get(server.uri)).toEqual({ keys: [ecKey] });
    clock.advance(HOUR - SECOND);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(1);
    clock.advance(SECOND);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]!.headers.accept).toContain('application/jwk-set+json');
  });

  it('subtracts Age from max-age', async () => {
    server = await jwksServer({ cacheControl: 'max-age=3600', age: '1800' });
    const jwks = cache();
    await jwks.get(server.uri);
    clock.advance(30 * MINUTE - 1);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(1);
    clock.advance(1);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(2);
  });

  it.each([
    ['a max-age below the floor gets the floor', 'max-age=10', 5 * MINUTE],
    ['a max-age above the ceiling gets the ceiling', 'max-age=31536000', 24 * HOUR],
    ['no-store gets the floor', 'no-store', 5 * MINUTE],
    ['no-cache gets the floor', 'no-cache, max-age=3600', 5 * MINUTE],
    ['no Cache-Control gets the default', undefined, 10 * MINUTE],
    ['a malformed max-age gets the default', 'max-age=soon', 10 * MINUTE],
  ])('%s', async (_name, cacheControl, lifetime) => {
    server = await jwksServer(cacheControl ? { cacheControl } : {});
    const jwks = cache();
    await jwks.get(server.uri);
    clock.advance(lifetime - 1);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(1);
    clock.advance(1);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(2);
  });

  it('honours configured bounds', async () => {
    server = await jwksServer({ cacheControl: 'max-age=5' });
    const jwks = cache({ floorMs: 2 * SECOND, ceilingMs: 3 * SECOND });
    await jwks.get(server.uri);
    clock.advance(3 * SECOND);
    await jwks.get(server.uri);
    expect(server.requests).toHaveLength(2);
  });

  it('shares one fetch among concurrent callers', async () => {
    server = await jwksServer({ delayMs: 50 });
    const jwks = cache();
    const results = await Promise.all(Array.from({ length: 20 }, () => jwks.get(server.uri)));
    expect(server.requests).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
  });

  it('refetches for an unknown kid at most once per cooldown, sharing the refetch', async () => {
    const rotated = { keys: [ecKey, rsaKey] };
    server = await jwksServer({ cacheControl: 'max-age=3600' }, { cacheControl: 'max-age=3600', body: rotated, delayMs: 30 });
    const jwks = cache();
    await jwks.get(server.uri);
    // Just fetched: an unknown kid does not fetch again.
    expect(await jwks.refreshForUnknownKid(server.uri)).toBeUndefined();
    expect(server.requests).toHaveLength(1);

    clock.advance(30 * SECOND);
    const refreshed = await Promise.all(Array.from({ length: 10 }, () => jwks.refreshForUnknownKid(server.uri)));
    expect(server.requests).toHaveLength(2);
    for (const result of refreshed) expect(result).toEqual(rotated);
    // The refetched set is what get serves now.
    expect(await jwks.get(server.uri)).toEqual(rotated);

    clock.advance(29 * SECOND);
    expect(await jwks.refreshForUnknownKid(server.uri)).toBeUndefined();
    expect(server.requests).toHaveLength(2);
    clock.advance(SECOND);
    expect(await jwks.refreshForUnknownKid(server.uri)).toEqual(rotated);
    expect(server.requests).toHaveLength(3);
  });

  it('joins a fetch already under way instead of refusing it for the cooldown', async () => {
    server = await jwksServer({ delayMs: 50 });
    const jwks = cache();
    const [fromGet, fromRefresh] = await Promise.all([jwks.get(server.uri), jwks.refreshForUnknownKid(server.uri)]);
    expect(fromRefresh).toBe(fromGet);
    expect(server.requests).toHaveLength(1);
  });

  it('does not cache errors', async () => {
    server = await jwksServer({ status: 500 }, { body: 'not json' }, {});
    const jwks = cache();
    expect(await reason(jwks.get(server.uri))).toBe('http_status');
    expect(await reason(jwks.get(server.uri))).toBe('invalid_jwks');
    expect(await jwks.get(server.uri)).toEqual({ keys: [ecKey] });
    expect(server.requests).toHaveLength(3);
  });

  it.each(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'])('refuses a set in which a key has the private member %s', async (member) => {
    server = await jwksServer({ body: { keys: [ecKey, { ...rsaKey, [member]: 'c2VjcmV0' }] } });
    expect(await reason(cache().get(server.uri))).toBe('invalid_jwks');
  });

  it.each<[string, unknown]>([
    ['an array', [ecKey]],
    ['null', null],
    ['no keys', {}],
    ['keys not an array', { keys: ecKey }],
    ['a key that is not an object', { keys: ['k1'] }],
    ['a key without kty', { keys: [{ kid: 'k1' }] }],
    ['a key with a numeric kty', { keys: [{ kty: 1 }] }],
  ])('refuses %s', async (_name, body) => {
    server = await jwksServer({ body });
    expect(await reason(cache().get(server.uri))).toBe('invalid_jwks');
  });

  it('refuses a set over 256 KiB, and accepts one just under', async () => {
    const padded = (bytes: number) => {
      const base = JSON.stringify({ keys: [{ ...ecKey, pad: '' }] });
      return JSON.stringify({ keys: [{ ...ecKey, pad: 'x'.repeat(bytes - base.length) }] });
    };
    server = await jwksServer({ body: padded(256 * 1024 + 1) }, { body: padded(256 * 1024) });
    const jwks = cache();
    const error = await jwks.get(server.uri).catch((e: unknown) => e);
    expect((error as JwksError).reason).toBe('fetch_failed');
    expect(((error as JwksError).cause as SafeFetchError).code).toBe('too_large');
    expect((await jwks.get(server.uri)).keys).toHaveLength(1);
  });

  it('uses the fetcher without loopback unless told to', async () => {
    server = await jwksServer({});
    expect(await reason(cache({ allowLoopback: false }).get(server.uri))).toBe('fetch_failed');
    expect(server.connections).toBe(0);
  });
});
