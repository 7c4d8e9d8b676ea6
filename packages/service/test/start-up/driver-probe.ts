import { createRequire } from 'node:module';
import { createMemoryStore, createPostgresStore, createService, silentLogger } from '@authmd/service';

/**
 * Run as a child process (lazy-drivers.test.ts): a service on the memory store with an outbox serves
 * a registration; then, as the argument says, a PostgreSQL store is made (it connects to nothing
 * until used) or a service that mails through SMTP (no mail is sent). Prints which of the drivers
 * were ever loaded: an ESM import of a CommonJS package enters require.cache, as a require does.
 */
const loaded = (name: string) => Object.keys(createRequire(import.meta.url).cache).some((path) => path.includes(`/node_modules/${name}/`));
const options = {
  issuer: 'http://127.0.0.1:1',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
  logger: silentLogger,
  maintenanceIntervalSeconds: 0,
};
const service = await createService({ ...options, store: createMemoryStore(), mail: { outbox: true } });
const answer = await service.handler(
  new Request('http://127.0.0.1:1/agent/identity', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' }),
  { clientIp: '127.0.0.1' },
);
await service.close();
const before = { pg: loaded('pg'), nodemailer: loaded('nodemailer') };

const then = process.argv[2];
if (then === 'postgres') {
  await createPostgresStore({ connectionString: 'postgres://postgres@127.0.0.1:1/none' }).close();
} else if (then === 'smtp') {
  const mailing = await createService({
    ...options,
    store: createMemoryStore(),
    mail: { smtp: { host: '127.0.0.1', port: 1, secure: false, ignoreTLS: true }, from: 'authmd <no-reply@authmd.test>' },
  });
  await mailing.close();
}
process.stdout.write(JSON.stringify({ status: answer.status, before, after: { pg: loaded('pg'), nodemailer: loaded('nodemailer') } }));
