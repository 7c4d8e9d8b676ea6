import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createSqliteStore } from '@authmd/service';
import { serviceTables } from '../../src/schema.ts';
import { accessTokenFor, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { Browser, latestCode } from './browser.ts';
import { attemptToken, authorize, completeClaim, pollClaim, refresh, registerServiceAuth, SECOND, startClaim, typeIn } from './flows.ts';

/**
 * Secrets at rest (profile.md §2, issue 3): after whole ceremonies in both directions, no stored row,
 * and no byte of the database files, holds a claim token, an attempt token, a code, a refresh or
 * access token, a session cookie or a sign-in code.
 */

const start = servicePerTest();

interface Secret {
  what: string;
  value: string;
}

/** Every text cell of every table of the database, with where it is. */
function dumpCells(path: string): { table: string; column: string; text: string }[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
    const names = tables.map((t) => t.name);
    for (const spec of serviceTables) expect(names, `table ${spec.name}`).toContain(spec.name);
    const cells: { table: string; column: string; text: string }[] = [];
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        for (const [column, value] of Object.entries(row)) {
          if (value === null || value === undefined) continue;
          const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
          cells.push({ table: name, column, text });
        }
      }
    }
    return cells;
  } finally {
    db.close();
  }
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

describe('secrets at rest', () => {
  it('no stored row and no database file holds any secret of a whole ceremony', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'authmd-secrets-')), 'authmd.db');
    const { base, clock } = await start({ store: createSqliteStore({ path }) });
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

    const cells = dumpCells(path);
    expect(cells.length).toBeGreaterThan(20);
    // Positive controls: the scan sees what is stored (the email, and the claim token's hash).
    expect(cells.some((c) => c.table === 'users' && holds(c.text, 'ada@example.com'))).toBe(true);
    const claimTokenHash = createHash('sha256').update(anonymous.claim.token).digest('base64url');
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

    // The raw files too (deleted rows and the WAL are not always overwritten).
    for (const file of [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f))) {
      const raw = readFileSync(file).toString('latin1');
      for (const secret of secrets) expect(holds(raw, secret.value), `${secret.what} in ${file}`).toBe(false);
    }
  });
});
