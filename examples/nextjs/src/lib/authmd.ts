import { testProviderTrustEntry } from '@authmd/conformance';
import { createService, createSqliteStore, type AuthmdService, type ServiceOptions } from '@authmd/service';

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
  holder[KEY] ??= createService(serviceOptions(process.env)).catch((error: unknown) => {
    delete holder[KEY];
    throw error;
  });
  return holder[KEY];
}

/**
 * The service's options, from the environment `next start` runs in. The service itself reads
 * AUTHMD_KEY_ENCRYPTION_KEY, which encrypts its stored signing keys: it refuses to start without one
 * when NODE_ENV=production, as under `next start`.
 */
export function serviceOptions(env: NodeJS.ProcessEnv): ServiceOptions {
  // The URL agents reach the app at: the issuer, and the notes API's resource identifier below it.
  const url = (env.AUTHMD_PUBLIC_URL ?? `http://127.0.0.1:${env.PORT ?? 3000}`).replace(/\/+$/, '');
  return {
    issuer: url,
    name: 'Notes on Next.js',
    resources: [{ resource: `${url}/api/notes`, name: 'Notes API' }],
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createSqliteStore({ path: env.AUTHMD_DATABASE ?? 'authmd-notes.db' }),
    // Sign-in codes go to /dev/mailbox: an example without an SMTP server. Set `mail.smtp` for real use.
    mail: { outbox: true },
    // Room for trying it by hand and for `authmd check` (some 40 registrations a run from one address).
    rateLimits: { anonymous: { perIp: 300 }, service_auth: { perIp: 300 } },
    limits: { signInCodesPerIpPerHour: 100 },
    // A route handler sees no socket: the client address comes from X-Forwarded-For, which
    // `next start` sets to the socket peer when the request has none (see docs/decisions.md).
    trustProxy: 1,
    // The test only: `authmd check`'s provider on 127.0.0.1 over http, which needs the development switch.
    trust: env.AUTHMD_TRUST_TEST_PROVIDER ? { issuers: [testProviderTrustEntry(Number(env.AUTHMD_TRUST_TEST_PROVIDER))], allowLoopback: true } : undefined,
  };
}
