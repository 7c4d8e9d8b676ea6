import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryStore, createService, expressMiddleware, requireToken, silentLogger, type AuthmdService } from '@authmd/service';
import { runConformance } from '../src/runner.ts';

/**
 * Issue 14: an Express app that mounts its body parsers before authmd, as most apps do, still passes
 * `authmd check`. The parsers' own errors (malformed JSON, a body too large, an unknown charset) on
 * the service's paths must reach the agent as the protocol's JSON errors, not Express's HTML pages.
 */

let server: Server;
let service: AuthmdService;
let base: string;

beforeAll(async () => {
  const app = express();
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  service = await createService({
    issuer: base,
    name: 'Notes behind Express',
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createMemoryStore(),
    logger: silentLogger,
    mail: { outbox: true },
    // A conformance run registers some 40 times from 127.0.0.1; the profile's 5 an hour is for the public.
    rateLimits: { anonymous: { perIp: 1000, perService: 1000 }, service_auth: { perIp: 1000, perService: 1000 } },
    // The type-in check waits one interval for its second poll; the interval is not what this file tests.
    limits: { pollIntervalSeconds: 1 },
  });
  app.use(express.json(), express.urlencoded({ extended: false }));
  app.use(expressMiddleware(service));
  app.get('/api/notes', requireToken(service.protect({ scopes: ['notes.read'] })), (_req, res) => void res.json({ notes: [] }));
  app.post('/api/notes', requireToken(service.protect({ scopes: ['notes.write'] })), (_req, res) => void res.status(201).json({ ok: true }));
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await service?.close();
});

describe('authmd check against Express with express.json() and express.urlencoded() mounted first', () => {
  it('fails no check', async () => {
    const report = await runConformance({ base, api: `${base}/api/notes`, providerPort: false });
    const failed = report.results.filter((result) => result.outcome === 'fail').map((result) => `${result.id}: ${result.message}`);
    expect(failed).toEqual([]);
    expect(report.summary.passed).toBeGreaterThan(40);
  }, 180_000);
});
