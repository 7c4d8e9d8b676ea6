import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryStore } from '@authmd/core/store';
import { createProvider } from '../src/index.ts';
import { afterTest } from '../../../test-support/after-test.ts';
import { ada, startFakeService, startProvider, TestClock, type FakeService, type RunningProvider } from './support.ts';

let service: FakeService;
beforeAll(async () => {
  service = await startFakeService();
});
afterAll(async () => {
  await service.close();
});
async function start(options: Parameters<typeof startProvider>[0] = {}): Promise<RunningProvider> {
  const r = await startProvider(options);
  afterTest(() => r.close());
  return r;
}

describe('published documents', () => {
  it('serves the JWKS with public keys only, cacheable for five minutes', async () => {
    const { server, provider } = await start();
    const response = await fetch(`${server.url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    const jwks = await response.json();
    expect(jwks).toEqual(provider.jwks());
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: expect.any(String) });
    expect(Object.keys(jwks.keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });

  it('keeps the old key published after a rotation, so ID-JAGs it signed still verify', async () => {
    const clock = new TestClock(Date.now());
    const { server, provider } = await start({ clock: clock.now });
    await provider.grants.create('user_ada', { audience: service.url, mode: 'always' });
    const before = await provider.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    const oldKid = provider.jwks().keys[0]!.kid;

    const newKid = await provider.rotateKeys();
    expect(newKid).not.toBe(oldKid);
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid)).toEqual([newKid, oldKid]);
    const keySet = createLocalJWKSet(jwks);
    const after = await provider.mintIdJag({ user: ada(clock.seconds), audience: service.url });
    expect((await jwtVerify(before.assertion, keySet)).protectedHeader.kid).toBe(oldKid);
    expect((await jwtVerify(after.assertion, keySet)).protectedHeader.kid).toBe(newKid);
  });

  it('keeps its keys across restarts (they live in the store)', async () => {
    const store = createMemoryStore();
    const a = await createProvider({ issuer: 'https://provider.example', store: { ...store, close: async () => {} } });
    const kid = a.jwks().keys[0]!.kid;
    await a.close();
    const b = await createProvider({ issuer: 'https://provider.example', store });
    expect(b.jwks().keys[0]!.kid).toBe(kid);
    await b.close();
  });

  it('serves a client ID metadata document naming itself, with no secret', async () => {
    const { server } = await start({ clientName: 'Test Agents' });
    const response = await fetch(`${server.url}/agent-auth.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    const document = await response.json();
    expect(document).toEqual({
      client_id: `${server.url}/agent-auth.json`,
      client_name: 'Test Agents',
      client_uri: server.url,
      jwks_uri: `${server.url}/.well-known/jwks.json`,
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'],
    });
    expect(JSON.stringify(document)).not.toMatch(/secret|"d"/);
  });

  it('does not serve a CIMD document when the client_id is something else', async () => {
    const { server, provider } = await start({ clientId: 'https://agents.example/client' });
    expect(provider.clientId).toBe('https://agents.example/client');
    expect((await fetch(`${server.url}/agent-auth.json`)).status).toBe(404);
  });

  it('serves minimal RFC 8414 metadata', async () => {
    const { server } = await start();
    const response = await fetch(`${server.url}/.well-known/oauth-authorization-server`);
    expect(response.headers.get('cache-control')).toBe('public, max-age=300');
    expect(await response.json()).toEqual({
      issuer: server.url,
      jwks_uri: `${server.url}/.well-known/jwks.json`,
      response_types_supported: [],
      grant_types_supported: [],
    });
  });

  it('answers 404 and 405 in JSON, and HEAD without a body', async () => {
    const { server, provider } = await start();
    const missing = await fetch(`${server.url}/nope`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toBe('not_found');
    const post = await fetch(`${server.url}/.well-known/jwks.json`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${server.url}/.well-known/jwks.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect(provider.handles('/.well-known/jwks.json')).toBe(true);
    expect(provider.handles('/login')).toBe(false);
  });

  it('checks the issuer', async () => {
    const store = createMemoryStore();
    await expect(createProvider({ issuer: 'http://provider.example', store })).rejects.toThrow(/https/);
    await expect(createProvider({ issuer: 'http://127.0.0.1:4000', store })).rejects.toThrow(/https/);
    await expect(createProvider({ issuer: 'https://provider.example/', store })).rejects.toThrow(/trailing slash/);
    await expect(createProvider({ issuer: 'https://provider.example?x=1', store })).rejects.toThrow(/query/);
    const p = await createProvider({ issuer: 'https://provider.example/tenant', store });
    expect(p.jwksUri).toBe('https://provider.example/tenant/.well-known/jwks.json');
    expect(p.handles('/.well-known/oauth-authorization-server/tenant')).toBe(true);
    expect(p.handles('/tenant/agent-auth.json')).toBe(true);
    await p.close();
  });
});
