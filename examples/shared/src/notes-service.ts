import { createService, createSqliteStore, type AuthmdService, type ServiceOptions } from '@authmd/service';

/** What every framework example's `startNotesApp` takes. */
export interface NotesAppOptions {
  /** Where it listens on 127.0.0.1; the issuer URL is built from it before the app starts. */
  port: number;
  /** The SQLite file. */
  database: string;
  /** Agent providers to trust (Agent Verified). */
  trust?: ServiceOptions['trust'];
}

/** What it gives back. */
export interface NotesApp {
  url: string;
  service: AuthmdService;
  close(): Promise<void>;
}

/**
 * The auth.md service of the framework examples: one notes API at `<url>/api/notes`, what agents may
 * do before and after a person claims them, and a SQLite file. The examples differ only in how their
 * framework mounts it.
 */
export function createNotesService(options: { name: string; url: string; database: string; trust?: ServiceOptions['trust']; trustProxy?: ServiceOptions['trustProxy'] }): Promise<AuthmdService> {
  return createService({
    issuer: options.url,
    name: options.name,
    resources: [{ resource: `${options.url}/api/notes`, name: 'Notes API' }],
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
    store: createSqliteStore({ path: options.database }),
    // Sign-in codes go to /dev/mailbox: an example without an SMTP server. Set `mail.smtp` for real use.
    mail: { outbox: true },
    // Room for trying it by hand and for `authmd check` (some 40 registrations a run from one address).
    rateLimits: { anonymous: { perIp: 300 }, service_auth: { perIp: 300 } },
    limits: { signInCodesPerIpPerHour: 100 },
    trust: options.trust,
    trustProxy: options.trustProxy,
  });
}
