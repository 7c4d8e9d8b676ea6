import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createPostgresStore, createSqliteStore, type Store } from '@authmd/service';
import { serviceTables } from '../../src/schema.ts';
import { accessTokenFor, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { createTestDatabase } from '../../../../test-support/postgres.ts';
import { Browser, latestCode } from './browser.ts';
import { attemptToken, authorize, completeClaim, pollClaim, refresh, registerServiceAuth, SECOND, startClaim, typeIn } from './flows.ts';

/**
 * Secrets at rest (profile.md §2, issue 3): after whole ceremonies in both directions, no stored row
 * (SQLite and PostgreSQL), and no byte of the SQLite files, holds a claim token, an attempt token, a code, a refresh or
 * access token, a session cookie or a sign-in code.
 */

const start = servicePerTest();

interface Secret {
  what: string;
  value: string;
}

type Cell = { table: string; column: string; text: string };

/** Every text cell of the given rows, with where it is; checks that every service table is there. */
function cellsOf(tables: Map<string, Record<string, unknown>[]>): Cell[] {
  for (const spec of serviceTables) expect([...tables.keys()], `table ${spec.name}`).toContain(spec.name);
  const cells: Cell[] = [];
  for (const [table, rows] of tables) {
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        const text = Buffer.isBuffer(value) ? value.toString('latin1') : typeof value === 'object' ? JSON.stringify(value) : String(value);
        cells.push({ table, column, text });
      }
    }
  }
  return cells;
}

/** Where the service stores, how to read every row of it back, and the files it writes (if it can see them). */
interface Place {
  store: Store;
  cells(): Promise<Cell[]>;
  files(): string[];
}

async function sqlitePlace(): Promise<Place> {
  const path = join(mkdtempSync(join(tmpdir(), 'authmd-secrets-')), 'authmd.db');
  return {
    store: createSqliteStore({ path }),
    cells: async () => {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        const names = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((t) => t.name);
        return cellsOf(new Map(names.map((name) => [name, db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]])));
      } finally {
        db.close();
      }
    },
    // The raw files too (deleted rows and the WAL are not always overwritten).
    files: () => [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f)),
  };
}

/** PostgreSQL: every row of every table, as the server returns it. Its data files are the server's, not read here. */
async function postgresPlace(): Promise<Place> {
  const database = await createTestDatabase();
  onTestFinished(() => database.drop());
  return {
    store: createPostgresStore({ connectionString: database.url }),
    cells: async () => {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const names = (await client.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`)).rows.map((t) => t.name);
        const tables = new Map<string, Record<string, unknown>[]>();
        for (const name of names) tables.set(name, (await client.query(`SELECT * FROM "${name}"`)).rows);
        return cellsOf(tables);
      } finally {
        await client.end();
      }
    },
    files: () => [],
  };
}

/** Whether `text` holds the secret: anywhere for long secrets, as a whole number for six-digit codes. */
function holds(text: string, secret: string): boolean {
  if (/^\d{6}$/.test(secret)) return new RegExp(`(?<![0-9])${secret}(?![0-9])`).test(text);
  return text.includes(secret);
}

/** The plain (unkeyed) digests of a secret: for a six-digit code these would be reversed in a second. */
function plainDigests(secret: string): string[] {
  const digest = createHash('sha256').update(secret).digest();
  return [digest.toString('hex'), digest.toString('base64'), digest.toString('base64url')];
}

describe.each([
  ['sqlite', sqlitePlace],
  ['postgres', postgresPlace],
] as const)('secrets at rest (%s)', (_backend, placeOf) => {
  it('no stored row and no database file holds any secret of a whole ceremony', async () => {
    const place = await placeOf();
    const { base, clock } = await start({ store: place.store });
    const secrets: Secret[] = [];
    const keep = (what: string, value: string | undefined) => {
      expect(value, what).toBeTruthy();
      secrets.push({ what, value: value! });
    };

    // 1. Read-back for an anonymous registration.
    const anonymous = await registerAnonymous(base);
    keep('claim token (anonymous)', anonymous.claim.token);
    keep('pre-claim access token', await accessTokenFor(base, anonymous.identity.assertion));
    const started = await startClaim(base, anonymous.claim.token, 'ada@example.com');
    keep('attempt token (anonymous)', attemptToken(started.attempt.verification_uri));
    keep('agent code (anonymous)', started.claim_attempt.user_code);

    const browser = new Browser(base);
    const signInForm = await browser.submit(await browser.get('/login'), '/login', { email: 'ada@example.com' });
    const signInCode = await latestCode(base, 'ada@example.com');
    keep('sign-in code', signInCode);
    const signedIn = await browser.submit(signInForm, '/login/code', { code: signInCode });
    expect(signedIn.status).toBe(303);
    for (const line of signedIn.response.headers.getSetCookie()) {
      const value = line.split(';')[0]!.split('=').slice(1).join('=');
      keep(`cookie ${line.split('=')[0]}`, decodeURIComponent(value));
    }
    for (const cookie of browser.cookies.values()) keep(`cookie ${cookie.name}`, decodeURIComponent(cookie.value));

    const pageCode = await authorize(browser, started.attempt.verification_uri);
    keep('page code', pageCode);
    const claimed = await (await completeClaim(base, anonymous.claim.token, pageCode)).json();
    keep('refresh token', claimed.identity.refresh_token.value);
    keep('post-claim access token', await accessTokenFor(base, claimed.identity.assertion));
    const rotated = await (await refresh(base, claimed.identity.refresh_token.value)).json();
    keep('rotated refresh token', rotated.identity.refresh_token.value);

    // 2. Type-in for a service_auth registration, with a wrong code typed first.
    const serviceAuth = await registerServiceAuth(base, 'ada@example.com');
    keep('claim token (service_auth)', serviceAuth.claim.token);
    keep('attempt token (service_auth)', attemptToken(serviceAuth.claim.attempt.verification_uri));
    keep('agent code (service_auth)', serviceAuth.claim.user_code);
    expect((await typeIn(browser, serviceAuth.claim.attempt.verification_uri, serviceAuth.claim.user_code)).status).toBe(200);
    clock.advance(5 * SECOND);
    const handedOver = await (await pollClaim(base, serviceAuth.claim.token)).json();
    keep('handed-over access token', handedOver.access_token);

    // 3. A sign-in that was started and never finished (its code is only in the mail).
    const other = new Browser(base);
    await other.submit(await other.get('/login'), '/login', { email: 'bob@example.com' });
    keep('unused sign-in code', await latestCode(base, 'bob@example.com'));

    const cells = await place.cells();
    expect(cells.length).toBeGreaterThan(20);
    // Positive controls: the scan sees what is stored (the email, and the claim token's hash).
    expect(cells.some((c) => c.table === 'users' && holds(c.text, 'ada@example.com'))).toBe(true);
    const claimTokenHash = anonymous.claim.token.slice(4, 14) + createHash('sha256').update(anonymous.claim.token).digest('base64url');
    expect(cells.some((c) => c.table === 'registrations' && c.text === claimTokenHash)).toBe(true);
    const leaks: string[] = [];
    for (const secret of secrets) {
      for (const cell of cells) {
        if (holds(cell.text, secret.value)) leaks.push(`${secret.what} in ${cell.table}.${cell.column}`);
        if (/^\d{6}$/.test(secret.value)) {
          for (const digest of plainDigests(secret.value)) if (cell.text.includes(digest)) leaks.push(`plain SHA-256 of ${secret.what} in ${cell.table}.${cell.column}`);
        }
      }
    }
    expect(leaks).toEqual([]);

    for (const file of place.files()) {
      const raw = readFileSync(file).toString('latin1');
      for (const secret of secrets) expect(holds(raw, secret.value), `${secret.what} in ${file}`).toBe(false);
    }
  });
});
