import { fileURLToPath } from 'node:url';
import { paths } from '@authmd/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startServerChild, type ServerChild } from '../src/child.ts';
import type { KeptSecrets } from '../src/growth/fill.ts';
import { measureOperations, OPERATIONS } from '../src/growth/measure.ts';
import { routeKey, serverP50Ms, timedSoFar } from '../src/growth/server-timing.ts';
import { expectJson, registrationRequest, tokenRequest } from '../src/replicas.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const children: ServerChild[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((child) => child.stop()));
});

/** The bench's demo child on the TypeScript sources (the bench itself runs it on dist/, which tests do not build). */
async function demoChild(env: Record<string, string> = {}): Promise<ServerChild> {
  const child = await startServerChild('bench/src/servers/demo-server.ts', { cwd: ROOT, nodeArgs: ['--conditions=@authmd/source'], env });
  children.push(child);
  return child;
}

describe('routes and the server p50', () => {
  it('names a route by method, path and its query parameters\' names, sorted, without their values', () => {
    expect(routeKey('POST', '/oauth2/token')).toBe('POST /oauth2/token');
    expect(routeKey('GET', '/admin/api/registrations?to=2026-12-08T00%3A00%3A00Z&limit=50')).toBe('GET /admin/api/registrations?limit&to');
    expect(routeKey('GET', '/admin/api/registrations?email=a%40b.example&email=c%40d.example')).toBe('GET /admin/api/registrations?email');
    expect(routeKey(undefined, '/api/notes?')).toBe('GET /api/notes');
    expect(routeKey('GET', 'http://[')).toBe('GET (unparsable target)');
  });

  it('leaves out the warm-up\'s requests and answers in milliseconds', () => {
    const micros = { 'GET /api/notes': [9_000, 9_000, 9_000, 200, 300, 400] };
    expect(timedSoFar(micros)).toEqual(new Map([['GET /api/notes', 6]]));
    expect(serverP50Ms(micros, 'GET /api/notes', 3)).toBe(0.3);
    expect(serverP50Ms(micros, 'GET /api/notes', 0)).toBe(9);
    expect(serverP50Ms(micros, 'GET /api/notes', 6)).toBeUndefined();
    expect(serverP50Ms(micros, 'POST /oauth2/token', 0)).toBeUndefined();
    expect(serverP50Ms(undefined, 'GET /api/notes', 0)).toBeUndefined();
  });
});

describe('the demo child times its own requests (BENCH_DEMO_SERVER_TIMING=1)', () => {
  it('keeps no times unless asked to', async () => {
    const child = await demoChild();
    await expectJson(child.url, registrationRequest);
    const stats = await child.stats();
    expect(stats?.requests).toBe(1);
    expect(stats?.serverMicros).toBeUndefined();
  });

  it('gives each growth operation its p50 in the server, from the rounds after the warm-up, within the client\'s time', async () => {
    const child = await demoChild({ BENCH_DEMO_SERVER_TIMING: '1' });
    // Three registrations as the growth fill keeps them (their claim and access tokens), and one by
    // email for each, which the admin search by email finds: two rounds of warm-up, one timed.
    const kept: KeptSecrets[] = [];
    for (const index of [0, 1, 2]) {
      const registered = await expectJson(child.url, registrationRequest);
      const exchanged = await expectJson(child.url, tokenRequest(registered.identity.assertion));
      await expectJson(child.url, { method: 'POST', path: paths.identity, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service_auth', login_hint: `person-${index}@bench.example` }) });
      kept.push({ index, accessToken: exchanged.access_token, claimToken: registered.claim.token, createdAt: Date.now() });
    }

    const [stats] = await measureOperations([{ base: child.url, kept, stats: () => child.stats() }], { warmup: 2, samples: 1 });
    const micros = (await child.stats())!.serverMicros!;
    expect(stats!.map((s) => s.operation)).toEqual([...OPERATIONS]);
    const routes = {
      exchange: `POST ${paths.token}`,
      'API call': 'GET /api/notes',
      'claim start': `POST ${paths.claim}`,
      'claim completion': `POST ${paths.claimComplete}`,
      'admin first page': 'GET /admin/api/registrations?limit',
      'admin deep page': 'GET /admin/api/registrations?limit&to',
      'admin by email': 'GET /admin/api/registrations?email',
    };
    for (const operation of stats!) {
      const route = routes[operation.operation];
      const timed = micros[route]!;
      // The set-up's three exchanges came before the rounds; each round sent one request of each operation.
      expect(timed, route).toHaveLength(operation.operation === 'exchange' ? 6 : 3);
      // The one timed round is the last request of its route; the warm-up's and the set-up's are left out
      // (with them, the p50 of three or six would be the last one's only by chance, for all seven routes).
      expect(operation.serverP50Ms, route).toBe(timed.at(-1)! / 1000);
      expect(operation.serverP50Ms!, route).toBeGreaterThan(0);
      expect(operation.serverP50Ms!, route).toBeLessThanOrEqual(operation.p50Ms);
    }
  });
});
