import { testProviderTrustEntry } from '@authmd/conformance';
import type { AuthmdService } from '@authmd/service';
import { createNotesService } from '../../../shared/src/notes-service.ts';

/**
 * The one auth.md service of this server process, made on the first request that needs it. Next
 * bundles each route on its own, so it is kept on globalThis (as `next dev` reloads modules too):
 * two services on one SQLite file would count limits and keep keys apart.
 */
const KEY = Symbol.for('authmd.nextjs.service');
type WithService = typeof globalThis & { [KEY]?: Promise<AuthmdService> };

export function authmd(): Promise<AuthmdService> {
  const holder = globalThis as WithService;
  // A service that failed to start (a missing AUTHMD_KEY_ENCRYPTION_KEY, say) is tried again next time.
  holder[KEY] ??= notesService(process.env).catch((error: unknown) => {
    delete holder[KEY];
    throw error;
  });
  return holder[KEY];
}

/**
 * The examples' notes service, from the environment `next start` runs in. The service itself reads
 * AUTHMD_KEY_ENCRYPTION_KEY, which encrypts its stored signing keys: it refuses to start without one
 * when NODE_ENV=production, as under `next start`.
 */
function notesService(env: NodeJS.ProcessEnv): Promise<AuthmdService> {
  // The URL agents reach the app at: the issuer, and the notes API's resource identifier below it.
  const url = (env.AUTHMD_PUBLIC_URL ?? `http://127.0.0.1:${env.PORT ?? 3000}`).replace(/\/+$/, '');
  return createNotesService({
    name: 'Notes on Next.js',
    url,
    database: env.AUTHMD_DATABASE ?? 'authmd-notes.db',
    // A route handler sees no socket: the client address comes from X-Forwarded-For, which
    // `next start` sets to the socket peer when the request has none (see docs/decisions.md).
    trustProxy: 1,
    // The test only: `authmd check`'s provider on 127.0.0.1 over http, which needs the development switch.
    trust: env.AUTHMD_TRUST_TEST_PROVIDER ? { issuers: [testProviderTrustEntry(Number(env.AUTHMD_TRUST_TEST_PROVIDER))], allowLoopback: true } : undefined,
  });
}
