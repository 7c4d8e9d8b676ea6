import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import pg from 'pg';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paths } from '@authmd/protocol';
import { AuthmdPagesHuman } from '../../../packages/conformance/src/human/authmd-pages.ts';
import { launchChromium } from '../../../packages/service/test/browser/chromium.ts';
import { createTestDatabase, type TestDatabase } from '../../../test-support/postgres.ts';
import { PROVIDER_EXAMPLE_EMAIL } from '../src/agent-verified-walkthrough.ts';
import { EXAMPLE_EMAIL } from '../src/claim-walkthrough.ts';
import { renderBanner } from '../src/banner.ts';
import { NOTES_PATH } from '../src/notes-api.ts';
import { readSettings, redactDatabaseUrl } from '../src/settings.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { ProviderSession, ServiceClient } from './agent-verified-http.ts';
import {
  exchange,
  freePort,
  mailedSignInCode,
  notes,
  pollClaim,
  postJson,
  revoke,
  startReplica,
  startResourceServer,
  tempDataDir,
  type Replica,
  type ResourceServer,
} from './replica-harness.ts';

/**
 * Issue 11, "Operations": two `npm start` processes on one PostgreSQL database, sharing the issuer
 * URL (AUTHMD_PUBLIC_URL, replica A's) and the key-encryption key, act as one service. Replica A
 * also runs the demo provider; B trusts it (AUTHMD_DEMO_PROVIDER_URL) and runs none. Both let one
 * resource server introspect (AUTHMD_INTROSPECTION_CLIENTS), which runs in a third process.
 */

const keyEncryptionKey = randomBytes(32).toString('base64url');
/** The resource server's introspection credentials, given to both replicas. */
const RS_CLIENT = { id: 'notes-rs', secret: randomBytes(32).toString('base64url') };

// ——— the person, in Chromium ———

const ACTION_TIMEOUT = 10_000;

/** The claim link (which names the issuer, A) as the person's browser reaches `replica`: its origin rewritten. */
function onReplica(link: string, replica: Replica): string {
  const url = new URL(link);
  const target = new URL(replica.url);
  url.protocol = target.protocol;
  url.host = target.host;
  return url.toString();
}

async function visible(locator: Locator): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
}

/**
 * Opens the claim link signed out, signs in on that replica's sign-in page with the code from that
 * replica's dev mailbox (the one that sent it: the outbox is per process), and lands on the claim page.
 */
async function signInThroughClaimLink(page: Page, replica: Replica, link: string, email: string): Promise<void> {
  await page.goto(link);
  expect(new URL(page.url()).pathname).toBe('/login');
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await visible(page.getByRole('heading', { name: 'Check your email' }));
  const code = await mailedSignInCode(replica.url, email);
  const landed = page.waitForResponse((response) => response.url() === link && response.request().method() === 'GET');
  await page.getByLabel('Code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  expect((await landed).status()).toBe(200);
  await page.waitForLoadState('load');
}

describe('two npm start processes on one PostgreSQL database', () => {
  let db: TestDatabase;
  let a: Replica | undefined;
  let b: Replica | undefined;
  let issuer: string;
  /** A's demo provider, which B trusts. */
  let providerUrl: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    const [portA, providerPortA, portB] = [await freePort(), await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${portA}`;
    providerUrl = `http://127.0.0.1:${providerPortA}`;
    const shared = {
      AUTHMD_DATABASE_URL: db.url,
      AUTHMD_PUBLIC_URL: issuer,
      AUTHMD_KEY_ENCRYPTION_KEY: keyEncryptionKey,
      AUTHMD_INTROSPECTION_CLIENTS: `${RS_CLIENT.id}:${RS_CLIENT.secret}`,
    };
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

  it('one ID-JAG presented to both replicas at once: exactly one accepts it, the other refuses it as a replay', async () => {
    // A's demo provider mints for the issuer (A's URL), which B names too: the ID-JAG is good on either.
    const ada = await ProviderSession.login(providerUrl, PROVIDER_EXAMPLE_EMAIL);
    await ada.grant(issuer);
    const winners: string[] = [];
    let accepted: Record<string, any> | undefined;
    for (let round = 0; round < 5; round++) {
      const idJag = await ada.idJag(issuer);
      const answers = await Promise.all([a!, b!].map((replica) => new ServiceClient(replica.url).register(idJag).then((answer) => ({ replica, ...answer }))));
      const [won, refused] = [...answers].sort((x, y) => x.status - y.status);
      expect(answers.map((answer) => answer.status).sort(), JSON.stringify(answers.map((answer) => answer.body))).toEqual([200, 400]);
      // The jti is burned once in the shared database: the loser is told it is a replay, nothing else.
      expect(refused!.body, JSON.stringify(refused!.body)).toMatchObject({ error: 'invalid_request', reason: 'replay_detected' });
      winners.push(won!.replica.url);
      accepted = won!.body;
    }
    // Whichever replica won the race, the registration it made is one and the same on both.
    const token = await exchange(winners[0] === a!.url ? b!.url : a!.url, accepted!.identity.assertion);
    expect(token.scope.split(' ').sort(), winners.join(', ')).toEqual(['notes.read', 'notes.write']);
    for (const replica of [a!, b!]) expect((await notes(replica.url, token.access_token, { method: 'POST', body: JSON.stringify({ text: 'verified' }) })).status).toBe(201);
  });

  describe('the claim ceremony in headless Chromium, the person on one replica and the agent on the other', () => {
    let chromium: Browser | undefined;
    beforeAll(async () => {
      chromium = await launchChromium();
    });
    afterAll(async () => {
      await chromium?.close();
    });

    const replica = (name: 'A' | 'B'): Replica => (name === 'A' ? a! : b!);

    for (const [personOn, agentOn] of [['A', 'B'], ['B', 'A']] as const) {
      for (const mode of ['read-back', 'type-in'] as const) {
        it(`${mode}: the browser on ${personOn}, the agent on ${agentOn}; the token writes notes on both`, async () => {
          const person = replica(personOn);
          const agent = replica(agentOn);
          const email = `${mode}.on.${personOn.toLowerCase()}@example.com`;
          const registered = await postJson(agent.url + paths.identity, { type: 'service_auth', login_hint: email });
          expect(registered.status).toBe(200);
          const { claim } = await registered.json();
          // The link names the issuer (A); a balancer could send the person to either replica: here, `person`.
          expect(new URL(claim.attempt.verification_uri).origin).toBe(issuer);
          const link = onReplica(claim.attempt.verification_uri, person);

          const context = await chromium!.newContext();
          context.setDefaultTimeout(ACTION_TIMEOUT);
          context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
          try {
            const page = await context.newPage();
            const origins = new Set<string>();
            page.on('request', (request) => void origins.add(new URL(request.url()).origin));
            const pageErrors: string[] = [];
            page.on('pageerror', (error) => pageErrors.push(String(error)));

            await signInThroughClaimLink(page, person, link, email);
            await visible(page.getByRole('heading', { name: 'Authorize this agent?' }));
            expect(await page.locator('main').innerText()).toContain(`as ${email}`);

            let accessToken: string;
            if (mode === 'read-back') {
              await page.getByRole('button', { name: 'Authorize and show me a code' }).click();
              await visible(page.getByRole('heading', { name: 'Read this code to your agent' }));
              const pageCode = (await page.locator('[data-testid="page-code"]').innerText()).trim();
              expect(pageCode).toMatch(/^\d{6}$/);
              const completed = await postJson(agent.url + paths.claimComplete, { claim_token: claim.token, user_code: pageCode });
              const done = await completed.json();
              expect(completed.status, JSON.stringify(done)).toBe(200);
              expect(done.status).toBe('claimed');
              // Exchanged on the person's replica, the other one than the agent's.
              const token = await exchange(person.url, done.identity.assertion);
              expect(token.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
              accessToken = token.access_token;
            } else {
              const agentCode: string = claim.user_code;
              expect(agentCode).toMatch(/^\d{6}$/);
              await page.getByLabel('Does your agent show you a six-digit code?').fill(agentCode);
              await page.getByRole('button', { name: 'Authorize with this code' }).click();
              await visible(page.getByRole('heading', { name: 'Agent linked' }));
              // The agent's first poll, on its replica, gets the tokens the person's replica linked.
              const polled = await pollClaim(agent.url, claim.token);
              const body = await polled.json();
              expect(polled.status, JSON.stringify(body)).toBe(200);
              expect(body.scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
              accessToken = body.access_token;
            }

            // The browser never left the person's replica, and the page threw nothing.
            expect([...origins]).toEqual([new URL(person.url).origin]);
            expect(pageErrors).toEqual([]);
            for (const target of [a!, b!]) {
              const added = await notes(target.url, accessToken, { method: 'POST', body: JSON.stringify({ text: `${mode} via ${target.url}` }) });
              expect(added.status, `${target.url}: ${await added.clone().text()}`).toBe(201);
            }
          } finally {
            await context.close();
          }
        }, 60_000);
      }
    }
  });

  describe('a resource server in a third process, introspecting at B with a 60 s cache', () => {
    let rs: ResourceServer | undefined;
    beforeAll(async () => {
      rs = await startResourceServer({
        clientId: RS_CLIENT.id,
        clientSecret: RS_CLIENT.secret,
        resource: issuer + NOTES_PATH,
        introspectionUrl: b!.url + paths.introspect,
        issuer,
        guards: {
          // Listens for revocations on the service's PostgreSQL database.
          listening: { cacheMs: 60_000, invalidationDatabaseUrl: db.url },
          // The same cache, deaf to them: what the resource server would do without the channel.
          deaf: { cacheMs: 60_000 },
        },
      });
    });
    afterAll(async () => {
      await rs?.stop();
    });

    /** `GET /<guard>/notes` on the resource server (notes.read, checked through introspection at B). */
    const rsNotes = (guard: string, token: string) => fetch(`${rs!.url}/${guard}/notes`, { headers: { authorization: `Bearer ${token}` } });

    /** An anonymous registration on A whose token B issued. */
    async function tokenFromAOnB(): Promise<{ token: string; registrationId: string }> {
      const registered = await postJson(a!.url + paths.identity, { type: 'anonymous' });
      expect(registered.status).toBe(200);
      const { id, identity } = await registered.json();
      return { token: (await exchange(b!.url, identity.assertion)).access_token, registrationId: id };
    }

    /**
     * A token both guards serve from their caches: revoked in the database behind the services' backs
     * (nothing announced), it still passes. The listening guard caches nothing until its LISTEN
     * connection is up, so this waits for that (a few tries at most).
     */
    async function cachedWitness(): Promise<string> {
      for (let attempt = 1; ; attempt++) {
        const { token, registrationId } = await tokenFromAOnB();
        for (const guard of ['listening', 'deaf']) expect((await rsNotes(guard, token)).status, rs!.stderr()).toBe(200);
        await sql('UPDATE access_tokens SET revoked_at = 1 WHERE registration_id = $1', [registrationId]);
        const statuses = await Promise.all(['listening', 'deaf'].map((guard) => rsNotes(guard, token).then((response) => response.status)));
        if (statuses.every((status) => status === 200)) return token;
        expect(statuses[1], 'the deaf guard caches from the start').toBe(200);
        if (attempt === 20) throw new Error(`the listening guard never served from its cache: ${rs!.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }

    async function sql(text: string, values: unknown[]): Promise<void> {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query(text, values);
      } finally {
        await client.end();
      }
    }

    it('is introspection both replicas advertise, for the configured client only', async () => {
      for (const replica of [a!, b!]) {
        const metadata = await (await fetch(`${replica.url}/.well-known/oauth-authorization-server`)).json();
        expect(metadata.introspection_endpoint).toBe(issuer + paths.introspect);
        const anonymous = await fetch(replica.url + paths.introspect, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' });
        expect(anonymous.status).toBe(401);
        expect((await anonymous.json()).error).toBe('invalid_client');
      }
    });

    it('a token registered on A and issued by B is served from the cache, revoked on A, and refused at once by B and by the resource server', async () => {
      const witness = await cachedWitness();

      const { token, registrationId } = await tokenFromAOnB();
      const first = await rsNotes('listening', token);
      expect(first.status, rs!.stderr()).toBe(200);
      expect((await first.json()).principal).toMatchObject({ registrationId, scopes: ['notes.read'], resource: issuer + NOTES_PATH });
      expect((await rsNotes('listening', token)).status).toBe(200); // from the cache now
      expect((await rsNotes('deaf', token)).status).toBe(200);
      expect((await notes(b!.url, token)).status).toBe(200);

      expect((await revoke(a!.url, token)).status).toBe(200);
      // The very next request: B and the listening resource server refuse it...
      expect((await notes(b!.url, token)).status).toBe(401);
      const refused = await rsNotes('listening', token);
      expect(refused.status).toBe(401);
      expect((await refused.json()).error).toBe('invalid_token');
      // ...and the announcement dropped the listening guard's whole cache: the witness is refused too.
      expect((await rsNotes('listening', witness)).status).toBe(401);
      // The same 60 s cache without the channel keeps serving both: the invalidation is what refused them.
      expect((await rsNotes('deaf', token)).status).toBe(200);
      expect((await rsNotes('deaf', witness)).status).toBe(200);
    });
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

  it('reads AUTHMD_REDIS_URL, refuses one that is not Redis without repeating it, and shows it without its password', () => {
    const redisUrl = 'redis://default:r3dis-secret@cache.internal:6379/2';
    expect(readSettings({ AUTHMD_REDIS_URL: ` ${redisUrl} ` }, '/srv')).toMatchObject({ ok: true, settings: { redisUrl } });
    expect(readSettings({ AUTHMD_REDIS_URL: 'rediss://cache.internal:6380', AUTHMD_DATABASE_URL: url, AUTHMD_KEY_ENCRYPTION_KEY: keyEncryptionKey }, '/srv')).toMatchObject({
      ok: true,
      settings: { redisUrl: 'rediss://cache.internal:6380', databaseUrl: url },
    });
    const plain = readSettings({}, '/srv');
    expect(plain.ok && plain.settings.redisUrl).toBeUndefined();
    for (const wrong of ['http://:r3dis-secret@cache.internal:6379', 'cache.internal:6379', 'redis://']) {
      const outcome = readSettings({ AUTHMD_REDIS_URL: wrong }, '/srv');
      expect(outcome.ok).toBe(false);
      expect(!outcome.ok && outcome.message).toMatch(/AUTHMD_REDIS_URL must be a Redis URL/);
      expect(!outcome.ok && outcome.message).not.toContain('r3dis-secret');
    }
    expect(redactDatabaseUrl(redisUrl)).toBe('redis://default@cache.internal:6379/2');
    expect(redactDatabaseUrl('redis://:r3dis-secret@cache.internal:6379')).toBe('redis://cache.internal:6379');
  });

  it('wraps the store with Redis when AUTHMD_REDIS_URL is given, and names that Redis in the banner', async () => {
    const redisUrl = process.env.AUTHMD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
    const dirs: string[] = [];
    const demo = await startDemo({ port: 0, dataDir: tempDataDir(dirs), store: 'memory', redisUrl });
    try {
      expect(demo.service.store.kind).toBe('memory+redis');
      expect(demo.redis).toEqual({ location: redactDatabaseUrl(redisUrl) });
      expect(renderBanner({ name: 'n', url: demo.url, dbPath: demo.dbPath, database: demo.database, redis: demo.redis })).toContain(`Redis           ${redactDatabaseUrl(redisUrl)}`);
      expect((await fetch(`${demo.url}/readyz`).then((r) => r.json())).store).toBe('memory+redis');
    } finally {
      await demo.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('AUTHMD_INTROSPECTION_CLIENTS', () => {
  const secret = 'an-introspection-secret-of-32-chars-or-more';

  it('lists the introspection callers as id:secret pairs; unset, introspection stays off', () => {
    const outcome = readSettings({ AUTHMD_INTROSPECTION_CLIENTS: ` notes-rs:${secret} , billing:${secret}x` }, '/srv');
    expect(outcome).toMatchObject({ ok: true, settings: { introspectionClients: [{ id: 'notes-rs', secret }, { id: 'billing', secret: `${secret}x` }] } });
    const plain = readSettings({}, '/srv');
    expect(plain.ok && plain.settings.introspectionClients).toBeUndefined();
  });

  it('refuses an entry without a colon, a short secret and a repeated id, without echoing a secret', () => {
    for (const value of ['notes-rs', `:${secret}`, 'notes-rs:too-short', `notes-rs:${secret},notes-rs:${secret}`]) {
      const outcome = readSettings({ AUTHMD_INTROSPECTION_CLIENTS: value }, '/srv');
      expect(outcome.ok, value).toBe(false);
      expect(!outcome.ok && outcome.message).toMatch(/^AUTHMD_INTROSPECTION_CLIENTS/);
      expect(!outcome.ok && outcome.message).not.toContain(secret);
      expect(!outcome.ok && outcome.message).not.toContain('too-short');
    }
  });
});
