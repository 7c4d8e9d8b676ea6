import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paths } from '@authmd/protocol';
import { AuthmdPagesHuman } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { createTestDatabase, type TestDatabase } from '../../../packages/service/test/support/postgres.ts';
import { EXAMPLE_EMAIL } from '../src/claim-walkthrough.ts';
import { readSettings, redactDatabaseUrl } from '../src/settings.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { exchange, freePort, notes, postJson, revoke, startReplica, tempDataDir, type Replica } from './replica-harness.ts';

/**
 * Issue 11, "Operations": two `npm start` processes on one PostgreSQL database, sharing the issuer
 * URL (AUTHMD_PUBLIC_URL, replica A's) and the key-encryption key, act as one service. Replica A
 * also runs the demo provider; B trusts it (AUTHMD_DEMO_PROVIDER_URL) and runs none.
 */

const keyEncryptionKey = randomBytes(32).toString('base64url');

describe('two npm start processes on one PostgreSQL database', () => {
  let db: TestDatabase;
  let a: Replica | undefined;
  let b: Replica | undefined;
  let issuer: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const [portA, providerPortA, portB] = [await freePort(), await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${portA}`;
    const providerUrl = `http://127.0.0.1:${providerPortA}`;
    const shared = { AUTHMD_DATABASE_URL: db.url, AUTHMD_PUBLIC_URL: issuer, AUTHMD_KEY_ENCRYPTION_KEY: keyEncryptionKey };
    const dataDir = () => tempDataDir(dirs);
    // A first: it migrates the database and creates the signing keys; B then starts on what A made.
    a = await startReplica({ ...shared, PORT: String(portA), PROVIDER_PORT: String(providerPortA), AUTHMD_DATA_DIR: dataDir() });
    b = await startReplica({ ...shared, PORT: String(portB), AUTHMD_DEMO_PROVIDER_URL: providerUrl, AUTHMD_DATA_DIR: dataDir() });
  }, 120_000);

  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    expect(codes.filter((code) => code !== undefined)).toEqual(codes.filter((code) => code !== undefined).map(() => 0));
    await db?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('say which database they use, without the password, and name the same issuer', async () => {
    for (const replica of [a!, b!]) {
      expect(replica.stdout()).toMatch(/PostgreSQL\s+postgres:\/\/postgres@127\.0\.0\.1:5432\/authmd_test_/);
      expect(replica.stdout()).toContain(`Home page       ${issuer}/`);
    }
    expect(b!.stdout()).toContain(`Listening on    ${b!.url}`);
    // The dev outbox is per replica: B's banner points at its own.
    expect(b!.stdout()).toContain(`Dev mailbox     ${b!.url}/dev/mailbox   (this replica's`);
    expect(b!.stdout()).toContain(`Health          ${b!.url}/healthz`);
    const metadata = (replica: Replica) => fetch(`${replica.url}/.well-known/oauth-authorization-server`).then((r) => r.json() as Promise<Record<string, unknown>>);
    const [metaA, metaB] = await Promise.all([metadata(a!), metadata(b!)]);
    expect(metaA.issuer).toBe(issuer);
    // B trusts A's demo provider: the same identity types and events endpoint, so the same document.
    expect(JSON.stringify(metaB)).toContain('identity_assertion');
    expect(metaB).toEqual(metaA);
    const [jwksA, jwksB] = await Promise.all([a!, b!].map((replica) => fetch(replica.url + paths.jwks).then((r) => r.json())));
    expect(jwksB).toEqual(jwksA);
  });

  it('answer /healthz and /readyz, 200 and no-store, on both', async () => {
    for (const replica of [a!, b!]) {
      const live = await fetch(`${replica.url}/healthz`);
      expect(live.status).toBe(200);
      expect(live.headers.get('cache-control')).toBe('no-store');
      expect(await live.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${replica.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.headers.get('cache-control')).toBe('no-store');
      expect(await ready.json()).toEqual({ status: 'ok', store: 'postgres' });
    }
  });

  it('an anonymous registration on A is exchanged on B, its token works on B and on A, and a revocation on B holds on A at once', async () => {
    const registered = await postJson(a!.url + paths.identity, { type: 'anonymous' });
    expect(registered.status).toBe(200);
    const { identity } = await registered.json();
    const token = await exchange(b!.url, identity.assertion);
    expect(token.scope).toBe('notes.read');
    for (const replica of [b!, a!]) {
      const listed = await notes(replica.url, token.access_token);
      expect(listed.status, `${replica.url}: ${await listed.clone().text()}`).toBe(200);
      expect(Array.isArray((await listed.json()).notes)).toBe(true);
    }
    // notes.write needs a claim: refused on either replica alike.
    const write = await notes(a!.url, token.access_token, { method: 'POST', body: JSON.stringify({ text: 'no' }) });
    expect(write.status).toBe(403);

    // Revoked on B, while A has just validated (and may have cached) it: A refuses the very next call.
    const revoked = await revoke(b!.url, token.access_token);
    expect(revoked.status).toBe(200);
    for (const replica of [a!, b!]) expect((await notes(replica.url, token.access_token)).status, replica.url).toBe(401);
  });

  it('a service_auth registration on B is claimed by a person who signs in and presses Authorize on A, and read back on B', async () => {
    const registered = await postJson(b!.url + paths.identity, { type: 'service_auth', login_hint: EXAMPLE_EMAIL });
    expect(registered.status).toBe(200);
    const { claim } = await registered.json();
    const link: string = claim.attempt.verification_uri;
    // The link names the issuer, so the person's browser goes to A (behind a load balancer: to any replica).
    expect(new URL(link).origin).toBe(issuer);

    const person = new AuthmdPagesHuman(a!.url);
    const code = await person.readBack(link, EXAMPLE_EMAIL);
    expect(code).toMatch(/^\d{6}$/);
    // The sign-in code went to the dev outbox of the replica that sent it (A): the outbox is per process.
    const outboxA = (await (await fetch(`${a!.url}/dev/mailbox.json`)).json()) as { messages: { to: string }[] };
    const outboxB = (await (await fetch(`${b!.url}/dev/mailbox.json`)).json()) as { messages: { to: string }[] };
    expect(JSON.stringify(outboxA.messages)).toContain(EXAMPLE_EMAIL);
    expect(outboxB.messages).toEqual([]);

    const completed = await postJson(b!.url + paths.claimComplete, { claim_token: claim.token, user_code: code });
    const done = await completed.json();
    expect(completed.status, JSON.stringify(done)).toBe(200);
    expect(done.status).toBe('claimed');
    const token = await exchange(a!.url, done.identity.assertion);
    expect(token.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
    for (const replica of [a!, b!]) {
      const added = await notes(replica.url, token.access_token, { method: 'POST', body: JSON.stringify({ text: `from ${replica.url}` }) });
      expect(added.status, await added.clone().text()).toBe(201);
    }
  });

  it('needs no sticky sessions: a person whose every request goes to the other replica than the last signs in and authorizes', async () => {
    const registered = await postJson(a!.url + paths.identity, { type: 'service_auth', login_hint: 'round.robin@example.com' });
    expect(registered.status).toBe(200);
    const { claim } = await registered.json();
    // A round-robin load balancer in front of both; only the dev mailbox is read where the code was sent from.
    const served: string[] = [];
    let next = 0;
    let signInSentBy = a!.url;
    const balancer = (url: string, init: RequestInit) => {
      const target = new URL(url);
      const pathname = target.pathname;
      const replica = pathname === '/dev/mailbox.json' ? signInSentBy : [a!.url, b!.url][next++ % 2]!;
      if (pathname === '/login' && init.method === 'POST') signInSentBy = replica;
      served.push(`${init.method ?? 'GET'} ${pathname} → ${replica}`);
      return fetch(replica + pathname + target.search, init);
    };
    const person = new AuthmdPagesHuman(issuer, balancer);
    const code = await person.readBack(claim.attempt.verification_uri, 'round.robin@example.com');
    expect(served.filter((line) => line.endsWith(b!.url)).length, served.join('\n')).toBeGreaterThan(1);
    expect(served.filter((line) => line.endsWith(a!.url)).length, served.join('\n')).toBeGreaterThan(1);
    const completed = await postJson(a!.url + paths.claimComplete, { claim_token: claim.token, user_code: code });
    expect(completed.status, await completed.clone().text()).toBe(200);
    expect((await completed.json()).status).toBe('claimed');
  });

  it('20 concurrent claim completions with the right code, alternating replicas: exactly one 200, the rest refused (already_claimed or too_many_attempts); the claim holds on both', async () => {
    const registered = await postJson(b!.url + paths.identity, { type: 'service_auth', login_hint: EXAMPLE_EMAIL });
    expect(registered.status).toBe(200);
    const { claim } = await registered.json();
    const code = await new AuthmdPagesHuman(a!.url).readBack(claim.attempt.verification_uri, EXAMPLE_EMAIL);
    expect(code).toMatch(/^\d{6}$/);

    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => postJson((i % 2 === 0 ? a! : b!).url + paths.claimComplete, { claim_token: claim.token, user_code: code })),
    );
    const bodies = await Promise.all(responses.map((r) => r.json() as Promise<Record<string, any>>));
    const statuses = responses.map((r) => r.status);
    const winners = bodies.filter((_, i) => statuses[i] === 200);
    expect(winners.length, JSON.stringify(statuses)).toBe(1);
    for (const [i, body] of bodies.entries()) {
      if (statuses[i] === 200) continue;
      // The losers are refused, never a second claim: already_claimed (409), or, once the attempt's
      // five code tries are used up by the concurrent requests, too_many_attempts (429).
      expect([`409 already_claimed`, `429 too_many_attempts`], JSON.stringify(body)).toContain(`${statuses[i]} ${body.error}`);
    }
    expect(winners[0]!.status).toBe('claimed');
    for (const replica of [a!, b!]) {
      const token = await exchange(replica.url, winners[0]!.identity.assertion);
      expect(token.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      const added = await notes(replica.url, token.access_token, { method: 'POST', body: JSON.stringify({ text: `claimed, from ${replica.url}` }) });
      expect(added.status, await added.clone().text()).toBe(201);
    }
  });
});

describe('two demo services on one PostgreSQL database (in process, low limits)', () => {
  let db: TestDatabase;
  const demos: RunningDemo[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const demo of demos) await demo.close();
    await db?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('count the registration rate limit once across both replicas', async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    const rateLimits = { anonymous: { perIp: 3, perService: 100 } };
    for (const listenOn of [port, 0]) {
      const dataDir = tempDataDir(dirs);
      demos.push(await startDemo({ port: listenOn, dataDir, databaseUrl: db.url, publicUrl, keyEncryptionKey, rateLimits }));
    }
    const [a, b] = demos.map((demo) => `http://127.0.0.1:${demo.port}`) as [string, string];
    const statuses: number[] = [];
    for (const base of [a, b, a, b, a]) statuses.push((await postJson(base + paths.identity, { type: 'anonymous' })).status);
    // Three from this address in the hour, wherever they landed; the fourth and fifth are refused on either replica.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });
});

describe('the replica settings of npm start', () => {
  const url = 'postgres://authmd:s3cret@db.internal:5432/authmd?sslmode=require';

  it('reads AUTHMD_DATABASE_URL, AUTHMD_PUBLIC_URL and AUTHMD_DEMO_PROVIDER_URL', () => {
    const outcome = readSettings(
      { AUTHMD_DATABASE_URL: url, AUTHMD_KEY_ENCRYPTION_KEY: keyEncryptionKey, AUTHMD_PUBLIC_URL: 'https://notes.example/', AUTHMD_DEMO_PROVIDER_URL: 'http://127.0.0.1:8788' },
      '/srv',
    );
    expect(outcome).toMatchObject({ ok: true, settings: { databaseUrl: url, publicUrl: 'https://notes.example', demoProviderUrl: 'http://127.0.0.1:8788' } });
    // SQLite stays the default: none of the three unless set.
    const plain = readSettings({}, '/srv');
    expect(plain.ok && [plain.settings.databaseUrl, plain.settings.publicUrl, plain.settings.demoProviderUrl]).toEqual([undefined, undefined, undefined]);
  });

  it('refuses PostgreSQL without AUTHMD_KEY_ENCRYPTION_KEY, a URL that is not PostgreSQL, and a public URL with a query', () => {
    const noKey = readSettings({ AUTHMD_DATABASE_URL: url }, '/srv');
    expect(noKey.ok).toBe(false);
    expect(!noKey.ok && noKey.message).toMatch(/AUTHMD_KEY_ENCRYPTION_KEY/);
    expect(!noKey.ok && noKey.message).not.toContain('s3cret');
    expect(readSettings({ AUTHMD_DATABASE_URL: 'mysql://x@h/db', AUTHMD_KEY_ENCRYPTION_KEY: keyEncryptionKey }, '/srv').ok).toBe(false);
    expect(readSettings({ AUTHMD_PUBLIC_URL: 'http://127.0.0.1:8787/?x=1' }, '/srv').ok).toBe(false);
    expect(readSettings({ AUTHMD_PUBLIC_URL: 'ftp://127.0.0.1' }, '/srv').ok).toBe(false);
  });

  it('shows a database URL without its password or query', () => {
    expect(redactDatabaseUrl(url)).toBe('postgres://authmd@db.internal:5432/authmd');
  });
});
