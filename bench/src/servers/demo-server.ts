import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo } from '../../../examples/demo/src/start.ts';

/**
 * The demo exactly as `npm start` builds it (service routes, notes API, home page) on a fresh
 * SQLite file (WAL) in a temporary directory; only the logger is silent and the rate limits are off.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'authmd-bench-'));
// The load generator registers thousands of times a second from one address: no rate limits here.
const unlimited = { perIp: Number.MAX_SAFE_INTEGER, perService: Number.MAX_SAFE_INTEGER };
const demo = await startDemo({ port: 0, dataDir, rateLimits: { anonymous: unlimited, service_auth: unlimited } });
process.stdout.write(`listening ${demo.url}\n`);

process.on('SIGTERM', () => {
  demo
    .close()
    .finally(() => rmSync(dataDir, { recursive: true, force: true }))
    .then(() => process.exit(0), () => process.exit(1));
});
