import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '@authmd/core/store';
import { createProvider, ProviderError } from '../src/index.ts';
import { ada, startFakeService, startProvider, TestClock, type FakeService, type RunningProvider } from './support.ts';

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c.close();
});

async function service(options: Parameters<typeof startFakeService>[0] = {}): Promise<FakeService> {
  const s = await startFakeService(options);
  cleanup.push(s);
  return s;
}
async function provider(clock = new TestClock()): Promise<RunningProvider> {
  const r = await startProvider({ clock: clock.now });
  cleanup.push(r);
  return r;
}
async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ProviderError);
  return (error as ProviderError).code;
}
const audOf = (assertion: string): unknown => JSON.parse(Buffer.from(assertion.split('.')[1]!, 'base64url').toString()).aud;

describe('audience discovery', () => {
  it('resolves a base URL to the issuer its RFC 8414 metadata names, and learns the events endpoint', async () => {
    const s = await service();
    const { provider: p } = await provider();
    const metadata = await p.discover(`${s.url}/`);
    expect(metadata).toEqual({ audience: `${s.url}/`, issuer: s.url, eventsEndpoint: s.eventsEndpoint, resource: null });
    const grant = await p.grants.create('user_ada', { audience: `${s.url}/`, mode: 'always' });
    expect(grant).toMatchObject({ audience: s.url, eventsUri: s.eventsEndpoint });
  });

  it('resolves a protected resource through its RFC 9728 metadata, and mints with aud = the issuer', async () => {
    const s = await service({ protectedResource: true });
    const clock = new TestClock();
    const { provider: p } = await provider(clock);
    expect(await p.discover(`${s.url}/api`)).toMatchObject({ issuer: s.url, resource: `${s.url}/api` });
    expect(s.requests).toEqual(['/.well-known/oauth-protected-resource/api', '/.well-known/oauth-authorization-server']);

    // Consent given for the resource and a mint asked for the base URL meet at the same issuer.
    await p.grants.create('user_ada', { audience: `${s.url}/api`, mode: 'always' });
    const { assertion } = await p.mintIdJag({ user: ada(clock.seconds), audience: s.url });
    expect(audOf(assertion)).toBe(s.url);
    const viaResource = await p.mintIdJag({ user: ada(clock.seconds), audience: `${s.url}/api` });
    expect(audOf(viaResource.assertion)).toBe(s.url);
  });

  it('caches metadata for five minutes and shares concurrent lookups', async () => {
    const s = await service();
    const clock = new TestClock();
    const { provider: p } = await provider(clock);
    await Promise.all([p.discover(s.url), p.discover(s.url), p.discover(s.url)]);
    const fetched = s.requests.length;
    expect(fetched).toBe(2); // PRM (404) and AS metadata, once
    clock.advance(299_000);
    await p.discover(s.url);
    expect(s.requests.length).toBe(fetched);
    clock.advance(2_000);
    await p.discover(s.url);
    expect(s.requests.length).toBe(fetched * 2);
  });

  it('refuses an authorization server whose metadata names another issuer', async () => {
    const s = await service({ claimedIssuer: () => 'https://evil.example' });
    const { provider: p } = await provider();
    expect(await codeOf(p.discover(s.url))).toBe('invalid_audience');
    expect(await codeOf(p.grants.create('user_ada', { audience: s.url, mode: 'always' }))).toBe('invalid_audience');
    expect(await p.grants.list('user_ada')).toEqual([]);
  });

  it('refuses an issuer that differs by more than a trailing slash', async () => {
    const s = await service({ claimedIssuer: (url) => `${url}/tenant` });
    const { provider: p } = await provider();
    expect(await codeOf(p.discover(s.url))).toBe('invalid_audience');
  });

  it('refuses an audience that is not an auth.md service or cannot be reached, and does not cache the failure', async () => {
    const s = await service();
    const { provider: p } = await provider();
    expect(await codeOf(p.discover(`${s.url}/nothing-here`))).toBe('invalid_audience');
    const port = s.port;
    await s.close();
    expect(await codeOf(p.discover(`http://127.0.0.1:${port}`))).toBe('invalid_audience');
    const back = await service({ port });
    expect((await p.discover(back.url)).issuer).toBe(back.url);
  });

  it('without allowLoopback, refuses loopback audiences before any request', async () => {
    const s = await service();
    const p = await createProvider({ issuer: 'https://provider.example', store: createMemoryStore() });
    cleanup.push(p);
    expect(await codeOf(p.discover(s.url))).toBe('invalid_request'); // plain http
    expect(await codeOf(p.discover(`https://127.0.0.1:${s.port}`))).toBe('invalid_audience'); // the safe fetcher refuses the address
    expect(await codeOf(p.discover('https://169.254.169.254/latest'))).toBe('invalid_audience');
    expect(s.requests).toEqual([]);
  });
});
