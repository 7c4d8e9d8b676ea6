import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { postJson, startService, type RunningService } from '../support/harness.ts';
import { expectError, json, rawJson, rawRequest, startBare, WELL_KNOWN_AS, WELL_KNOWN_PRM, type RawResponse } from './helpers.ts';

/** Hostile and sloppy input: always a JSON answer below 500, never HTML, never a hang. */

const LIMIT = 64 * 1024;

let running: RunningService;
let base: string;
let bare: Awaited<ReturnType<typeof startBare>>;
// A fresh service per test: several tests register, and registrations may be rate limited.
beforeEach(async () => {
  running = await startService();
  base = running.base;
  bare = await startBare(running.service);
});
afterEach(async () => {
  await bare.close();
  await running.close();
});

/** `{"type":"anonymous","pad":"xxx…"}` of exactly `size` bytes. */
function paddedRegistration(size: number): string {
  const empty = JSON.stringify({ type: 'anonymous', pad: '' });
  return JSON.stringify({ type: 'anonymous', pad: 'x'.repeat(size - empty.length) });
}

async function expectTooLarge(response: Response | RawResponse): Promise<void> {
  expect(response.status).toBe(413);
  const body = response instanceof Response ? await json(response) : rawJson(response);
  expect(body.error).toBe('payload_too_large');
}

describe('body size limit (64 KiB)', () => {
  it('accepts a body of exactly 64 KiB', async () => {
    const body = paddedRegistration(LIMIT);
    expect(Buffer.byteLength(body)).toBe(LIMIT);
    expect((await postJson(`${base}/agent/identity`, body)).status).toBe(200);
  });

  it('answers 413 JSON to a body one byte over, declared with Content-Length', async () => {
    await expectTooLarge(await postJson(`${base}/agent/identity`, paddedRegistration(LIMIT + 1)));
  });

  it.each(['/agent/identity', '/oauth2/token', '/oauth2/revoke'])('answers 413 JSON to 70 KB with Content-Length at %s', async (path) => {
    const response = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': path === '/agent/identity' ? 'application/json' : 'application/x-www-form-urlencoded' },
      body: 'a'.repeat(70_000),
    });
    await expectTooLarge(response);
  });

  it('answers 413 JSON to 70 KB sent chunked without Content-Length', async () => {
    const pieces = Array.from({ length: 14 }, () => Buffer.alloc(5_000, 0x61));
    const response = await rawRequest(base, {
      method: 'POST',
      path: '/agent/identity',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: pieces,
    });
    await expectTooLarge(response);
  });

  it('serves a small body sent chunked', async () => {
    const response = await rawRequest(base, {
      method: 'POST',
      path: '/agent/identity',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: ['{"type":', '"anonymous"}'],
    });
    expect(response.status).toBe(200);
    expect(rawJson(response).type).toBe('anonymous');
  });
});

describe('malformed registration bodies: 400 invalid_request naming what is wrong', () => {
  const cases: [string, string | Buffer, string | null, string][] = [
    ['malformed JSON', '{"type":', 'application/json', 'body'],
    ['a JSON array', '[{"type":"anonymous"}]', 'application/json', 'body'],
    ['a JSON string', '"anonymous"', 'application/json', 'body'],
    ['JSON null', 'null', 'application/json', 'body'],
    ['an empty body', '', 'application/json', 'body'],
    ['text/plain', '{"type":"anonymous"}', 'text/plain', 'Content-Type'],
    ['a form body', 'type=anonymous', 'application/x-www-form-urlencoded', 'Content-Type'],
    ['no Content-Type', '{"type":"anonymous"}', null, 'Content-Type'],
    ['an unknown type', '{"type":"wizard"}', 'application/json', 'type'],
    ['a missing type', '{"kind":"anonymous"}', 'application/json', 'type'],
    ['a type that is a number', '{"type":1}', 'application/json', 'type'],
    ['a type that is an array', '{"type":["anonymous"]}', 'application/json', 'type'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'application/json', 'body'],
    ['service_auth without login_hint', '{"type":"service_auth"}', 'application/json', 'login_hint'],
  ];

  it.each(cases)('%s', async (_label, body, contentType, field) => {
    const response = await rawRequest(base, {
      method: 'POST',
      path: '/agent/identity',
      headers: { ...(contentType ? { 'content-type': contentType } : {}), 'content-length': Buffer.byteLength(body) },
      body,
    });
    expect(response.status).toBe(400);
    const parsed = rawJson(response);
    expect(parsed.error).toBe('invalid_request');
    expect(parsed.error_description).toContain(field);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('accepts a charset parameter and a differently cased media type', async () => {
    for (const type of ['application/json; charset=utf-8', 'Application/JSON']) {
      const response = await fetch(`${base}/agent/identity`, { method: 'POST', headers: { 'content-type': type }, body: '{"type":"anonymous"}' });
      expect(response.status, type).toBe(200);
    }
  });

  it('accepts extra fields that real clients send (client_id, resource)', async () => {
    const response = await postJson(`${base}/agent/identity`, { type: 'anonymous', client_id: 'https://agent.example/cimd.json', resource: base, extra: { nested: [1, 2] } });
    expect(response.status).toBe(200);
    expect((await json(response)).type).toBe('anonymous');
  });
});

describe('paths and methods', () => {
  it('answers an unknown path under the service with 404 JSON', async () => {
    for (const path of ['/nothing', '/agent/identity/nope', `${WELL_KNOWN_PRM}/nope`, '/oauth2']) {
      const response = await fetch(bare.base + path);
      expect(response.status, path).toBe(404);
      expect((await json(response)).error).toBe('not_found');
    }
  });

  it.each([
    ['GET', '/agent/identity', 'POST'],
    ['PUT', '/oauth2/token', 'POST'],
    ['DELETE', '/oauth2/revoke', 'POST'],
    ['POST', '/auth.md', 'GET, HEAD'],
    ['POST', WELL_KNOWN_AS, 'GET, HEAD'],
    ['PATCH', '/.well-known/jwks.json', 'GET, HEAD'],
    ['OPTIONS', '/agent/identity', 'POST'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const response = await fetch(base + path, { method });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe(allow);
    await expectError(response, 405, 'method_not_allowed');
  });

  it('answers HEAD on a document like GET, without a body', async () => {
    const response = await fetch(base + WELL_KNOWN_AS, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.text()).toBe('');
  });

  it('answers TRACE on its own paths with 405 JSON, not a dropped connection', async () => {
    for (const path of ['/agent/identity', '/oauth2/token', '/auth.md']) {
      const response = await rawRequest(bare.base, { method: 'TRACE', path }).catch((error: Error) => ({ status: 0, error: error.message }));
      expect(response.status, `TRACE ${path}: ${JSON.stringify(response)}`).toBe(405);
      expect(rawJson(response as RawResponse).error).toBe('method_not_allowed');
    }
  });
});

describe('a burst of random requests', () => {
  /** mulberry32: a small seeded PRNG, so a failure can be replayed. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it('never answers 5xx, never answers HTML, and always answers JSON (or markdown for auth.md)', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? 20261128);
    const random = prng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));

    const methods = ['GET', 'POST', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
    const paths = [
      '/agent/identity',
      '/agent/identity/',
      '/agent/identity?type=anonymous',
      '/agent/identity/claim',
      '/oauth2/token',
      '/oauth2/token?grant_type=x',
      '/oauth2/revoke',
      '/auth.md',
      '/.well-known/jwks.json',
      WELL_KNOWN_AS,
      WELL_KNOWN_PRM,
      `${WELL_KNOWN_PRM}/x`,
      '/%2e%2e/agent/identity',
      '/agent/%69dentity',
      '/unknown',
    ];
    const contentTypes = [
      'application/json',
      'application/json; charset=utf-8',
      'application/x-www-form-urlencoded',
      'text/plain',
      'multipart/form-data; boundary=xyz',
      'application/octet-stream',
      'application/jwt',
      null,
    ];
    const bodies: (() => Buffer | string)[] = [
      () => '',
      () => bytes(1 + Math.floor(random() * 2048)),
      () => '{"type":"anonymous"}',
      () => '{"type":"anonymous","client_id":"x","resource":"y"}',
      () => JSON.stringify({ type: pick(['anonymous', 'service_auth', 'identity_assertion', 'refresh', 'x', 1, null, {}, []]), login_hint: pick(['a@b.co', '', 1]), assertion: pick(['a.b.c', 5]) }),
      () => '['.repeat(5000) + ']'.repeat(5000),
      () => `{"a":${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}}`,
      () => '{"type":"anonymous"',
      () => '\u0000\u0001\u0002',
      () => '"\ud800"',
      () => 'grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=' + bytes(30).toString('base64url'),
      () => 'grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=a.b.c&resource=%ZZ&scope=%00',
      () => `token=${bytes(40).toString('base64url')}&token_type_hint=${pick(['access_token', 'refresh_token', 'x', ''])}`,
      () => 'token=at_x&token=at_y',
      () => '%%%&&&===',
      () => `grant_type=${pick(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])}&__proto__=x`,
      () => 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
      () => 'a'.repeat(LIMIT + 10),
    ];

    const failures: string[] = [];
    for (let i = 0; i < 200; i++) {
      const path = pick(paths);
      // Mostly the method the path serves, so that bodies reach the parsers; sometimes any method.
      const method = random() < 0.7 ? (/identity|oauth2/.test(path) ? 'POST' : 'GET') : pick(methods);
      const contentType = pick(contentTypes);
      const body = method === 'GET' || method === 'HEAD' ? undefined : pick(bodies)();
      const headers: Record<string, string | number> = {};
      if (contentType) headers['content-type'] = contentType;
      if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
      if (random() < 0.2) headers.authorization = pick(['Bearer x', 'Basic eDp5', 'Bearer', 'garbage']);
      const label = `#${i} ${method} ${path} [${contentType}] seed=${seed}`;
      let response: RawResponse;
      try {
        response = await rawRequest(bare.base, { method, path, headers, body });
      } catch (error) {
        failures.push(`${label}: no response (${(error as Error).message})`);
        continue;
      }
      const type = String(response.headers['content-type'] ?? '');
      const expectedType = path === '/auth.md' && response.status === 200 ? /^text\/markdown/ : /^application\/json/;
      if (response.status >= 500) failures.push(`${label}: status ${response.status}`);
      if (/html/i.test(type)) failures.push(`${label}: HTML answer`);
      if (response.body.length > 0 && !expectedType.test(type)) failures.push(`${label}: content-type "${type}"`);
      if (method !== 'HEAD' && response.status !== 200 && response.body.length === 0) failures.push(`${label}: ${response.status} with no body`);
    }
    expect(failures).toEqual([]);
  });
});
