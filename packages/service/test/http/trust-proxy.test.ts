import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createMemoryStore, createService, expressMiddleware, silentLogger, type Logger } from '@authmd/service';
import { postJson, servicePerTest, testClock, type RunningService } from '../support/harness.ts';

/**
 * The client address over real HTTP (issue 14, "Client IP"): which address the per-IP registration
 * limit counts through each adapter, with and without trusted proxies. Two registrations per address
 * per hour, so the third from one address is refused and one from another address is not.
 */

const start = servicePerTest();
const TWO_PER_IP = { anonymous: { perIp: 2, perService: 1000 } };

function register(base: string, headers: Record<string, string> = {}): Promise<Response> {
  return postJson(`${base}/agent/identity`, { type: 'anonymous' }, headers);
}

/** Whether the per-IP limit treats requests carrying these headers as one client: two pass, the third is refused. */
async function expectCountedAs(base: string, headers: Record<string, string>): Promise<void> {
  for (let i = 1; i <= 2; i++) expect((await register(base, headers)).status, `registration ${i} with ${JSON.stringify(headers)}`).toBe(200);
  const refused = await register(base, headers);
  expect(refused.status, `registration 3 with ${JSON.stringify(headers)}`).toBe(429);
  expect((await refused.json()).error).toBe('rate_limit_exceeded');
}

describe('the node adapter', () => {
  it('without trustProxy, X-Forwarded-For is ignored: a client cannot buy budget by forging it', async () => {
    const { base } = await start({ rateLimits: TWO_PER_IP });
    expect((await register(base, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.3' })).status).toBe(429);
  });

  it('behind one proxy (trustProxy: 1), each address the proxy names has its own budget; addresses the client prepends do not', async () => {
    const { base } = await start({ rateLimits: TWO_PER_IP, trustProxy: 1 });
    await expectCountedAs(base, { 'x-forwarded-for': '203.0.113.1' });
    expect((await register(base, { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' })).status).toBe(429);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
  });

  it('a list of proxies that does not include the peer (127.0.0.1): the peer is the client, its header ignored', async () => {
    const { base } = await start({ rateLimits: TWO_PER_IP, trustProxy: ['10.0.0.0/8'] });
    expect((await register(base, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.3' })).status).toBe(429);
  });

  it('a list that includes the peer, reading RFC 7239 Forwarded', async () => {
    const { base } = await start({ rateLimits: TWO_PER_IP, trustProxy: ['127.0.0.1', '::1'], proxyHeader: 'forwarded' });
    await expectCountedAs(base, { forwarded: 'for="[2001:db8:1:2::5]:4711";proto=https' });
    // The same /64: the same client.
    expect((await register(base, { forwarded: 'for="[2001:db8:1:2::6]"' })).status).toBe(429);
    expect((await register(base, { forwarded: 'for=192.0.2.44' })).status).toBe(200);
    // X-Forwarded-For is not the header these proxies use.
    expect((await register(base, { 'x-forwarded-for': '192.0.2.45', forwarded: 'for=192.0.2.44' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '192.0.2.46', forwarded: 'for=192.0.2.44' })).status).toBe(429);
  });
});

describe('the Web handler', () => {
  function webRegister(running: RunningService, headers: Record<string, string>, clientIp?: string): Promise<Response> {
    const request = new Request(`${running.base}/agent/identity`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ type: 'anonymous' }),
    });
    return running.service.handler(request, clientIp === undefined ? undefined : { clientIp });
  }

  function capturingLogger(): { logger: Logger; warnings: string[] } {
    const warnings: string[] = [];
    return { logger: { ...silentLogger, warn: (message) => void warnings.push(message) }, warnings };
  }

  it('given no address and no trusted proxy, says once in the log that per-IP limits cannot count such requests, and what to do', async () => {
    const { logger, warnings } = capturingLogger();
    const running = await start({ rateLimits: TWO_PER_IP, logger });
    warnings.length = 0; // what createService said at start
    for (let i = 0; i < 3; i++) expect((await webRegister(running, {})).status).toBe(200);
    const said = warnings.filter((w) => w.includes('without a client address'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/per-IP limits/);
    expect(said[0]).toMatch(/\{ clientIp \}/);
    expect(said[0]).toMatch(/trustProxy/);
  });

  it('behind one proxy, reads the address from the header even when the host gives none, and warns of nothing', async () => {
    const { logger, warnings } = capturingLogger();
    const running = await start({ rateLimits: TWO_PER_IP, trustProxy: 1, logger });
    for (let i = 0; i < 2; i++) expect((await webRegister(running, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
    expect((await webRegister(running, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(429);
    expect((await webRegister(running, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    expect(warnings.filter((w) => w.includes('without a client address'))).toEqual([]);
  });
});

describe('the Express adapter', () => {
  async function startExpress(trustProxy: number | false): Promise<string> {
    const app = express();
    if (trustProxy !== false) app.set('trust proxy', trustProxy);
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const service = await createService({
      issuer: base,
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
      store: createMemoryStore(),
      logger: silentLogger,
      clock: testClock(),
      maintenanceIntervalSeconds: 0,
      rateLimits: TWO_PER_IP,
    });
    app.use(expressMiddleware(service));
    onTestFinished(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await service.close();
    });
    return base;
  }

  it("counts req.ip: with Express's own trust proxy setting, the address its proxy names", async () => {
    const base = await startExpress(1);
    await expectCountedAs(base, { 'x-forwarded-for': '203.0.113.1' });
    expect((await register(base, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
  });

  it('without it, the socket peer', async () => {
    const base = await startExpress(false);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    expect((await register(base, { 'x-forwarded-for': '203.0.113.3' })).status).toBe(429);
  });
});
