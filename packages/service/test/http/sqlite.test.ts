import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '@authmd/service';
import { accessTokenFor, callApi, exchange, postForm, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { expectInvalidGrant, HOUR, SECOND } from './helpers.ts';

/** The core flows again, on the SQLite store. */

let running: RunningService | undefined;
let dir: string | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** The harness's own SQLite backend. */
async function startSqlite(): Promise<{ running: RunningService }> {
  running = await startService({ backend: 'sqlite' });
  expect(running.service.store.kind).toBe('sqlite');
  return { running };
}

/** A SQLite store at a path the test knows, so it can read the database file itself. */
async function startSqliteAt(): Promise<{ running: RunningService; path: string }> {
  dir = mkdtempSync(join(tmpdir(), 'authmd-http-sqlite-'));
  const path = join(dir, 'authmd.db');
  running = await startService({ store: createSqliteStore({ path }) });
  return { running, path };
}

describe('sqlite backend', () => {
  it('runs register → exchange → API → revoke → 401', async () => {
    const { running } = await startSqlite();
    const { base } = running;
    const registration = await registerAnonymous(base);
    const token = await accessTokenFor(base, registration.identity.assertion);
    expect((await callApi(base, token)).status).toBe(200);
    expect((await postForm(`${base}/oauth2/revoke`, { token })).status).toBe(200);
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('supersedes a revoked assertion and kills its access tokens', async () => {
    const { running } = await startSqlite();
    const { base } = running;
    const { identity } = await registerAnonymous(base);
    const token = await accessTokenFor(base, identity.assertion);
    expect((await postForm(`${base}/oauth2/revoke`, { token: identity.assertion })).status).toBe(200);
    await expectInvalidGrant(await exchange(base, identity.assertion), 'superseded');
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('refuses the assertion and tokens of a registration the operator revoked', async () => {
    const { running } = await startSqlite();
    const { base, service } = running;
    const registration = await registerAnonymous(base);
    const token = await accessTokenFor(base, registration.identity.assertion);
    expect(await service.revokeRegistration(registration.id)).toBe(true);
    await expectInvalidGrant(await exchange(base, registration.identity.assertion), 'registration_revoked');
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('expires assertions and access tokens on the injected clock', async () => {
    const { running } = await startSqlite();
    const { base, clock } = running;
    const { identity } = await registerAnonymous(base);
    const token = await accessTokenFor(base, identity.assertion);
    clock.advance(HOUR + 61 * SECOND);
    await expectInvalidGrant(await exchange(base, identity.assertion), 'expired');
    expect((await callApi(base, token)).status).toBe(401);
  });

  it('rotates keys: an old assertion still exchanges after rotation', async () => {
    const { running } = await startSqlite();
    const { base, service } = running;
    const { identity } = await registerAnonymous(base);
    await service.rotateKeys();
    expect((await exchange(base, identity.assertion)).status).toBe(200);
  });

  it('keeps no claim token or access token in the database file, only hashes', async () => {
    const { running, path } = await startSqliteAt();
    const { base } = running;
    const registration = await registerAnonymous(base);
    const claimToken: string = registration.claim.token;
    const token = await accessTokenFor(base, registration.identity.assertion);

    const db = new Database(path, { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
      expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['registrations', 'access_tokens']));
      const rows = tables.flatMap(({ name }) => db.prepare(`SELECT * FROM "${name}"`).all());
      const dump = JSON.stringify(rows);
      expect(dump).toContain(registration.id);
      expect(dump).not.toContain(claimToken);
      expect(dump).not.toContain(token);
    } finally {
      db.close();
    }
    for (const file of [path, `${path}-wal`]) {
      if (!existsSync(file)) continue;
      const bytes = readFileSync(file).toString('latin1');
      expect(bytes).not.toContain(claimToken);
      expect(bytes).not.toContain(token);
    }
  });
});
