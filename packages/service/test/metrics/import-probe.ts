import { createRequire } from 'node:module';
import { createMemoryStore, createService, silentLogger } from '@authmd/service';

/**
 * Run as a child process (metrics.test.ts): creates a service with metrics on or off, answers one
 * registration, and prints whether prom-client was ever loaded (an ESM import of it, a CommonJS
 * package, enters require.cache).
 */
const on = process.argv[2] === 'on';
const service = await createService({
  issuer: 'http://127.0.0.1:1',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
  store: createMemoryStore(),
  logger: silentLogger,
  maintenanceIntervalSeconds: 0,
  mail: { outbox: true },
  metrics: on,
});
const answer = await service.handler(new Request('http://127.0.0.1:1/agent/identity', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' }), { clientIp: '127.0.0.1' });
const loaded = Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes('/node_modules/prom-client/'));
process.stdout.write(JSON.stringify({ status: answer.status, loaded, registry: service.metrics !== undefined }));
await service.close();
