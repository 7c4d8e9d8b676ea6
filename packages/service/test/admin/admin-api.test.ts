import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../../../../test-support/recording-logger.ts';
import { auditEvents, providerEventStats } from '../../src/schema.ts';
import { expectSetAccepted, deliverSet, presentIdJag, registerIdJag, trustedService } from '../agent-verified/setup.ts';
import { providerPerTest } from '../agent-verified/test-provider.ts';
import { accessToken, accessTokenFor, callApi, postJson, registerAnonymous, servicePerTest, type HarnessOptions, type RunningService } from '../support/harness.ts';

/**
 * The admin API over real HTTP (issue 15): every operation, who may call it, and that what an
 * operator does takes effect at once (the agent's next call) and for good.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

const ALICE = 'alice-token-0123456789abcdefghijklmnopqrstuvwxyz';
const BOB = 'bob-token-0123456789abcdefghijklmnopqrstuvwxyz-bob';
const admin = { apiTokens: [{ operator: 'alice@ops.example', token: ALICE }, { operator: 'bob@ops.example', token: BOB }] };
const UNLIMITED = { perIp: 1_000_000, perService: 1_000_000 };

type Json = Record<string, any>;

function startAdmin(options: HarnessOptions = {}): Promise<RunningService> {
  return start({ admin, rateLimits: { anonymous: UNLIMITED, service_auth: UNLIMITED, identity_assertion: UNLIMITED }, ...options });
}

async function call(base: string, path: string, init: { token?: string; body?: unknown; method?: string } = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = init.token === undefined ? {} : { authorization: `Bearer ${init.token}` };
  const response =
    init.body === undefined && init.method !== 'POST'
      ? await fetch(`${base}/admin/api${path}`, { headers })
      : await postJson(`${base}/admin/api${path}`, init.body ?? {}, headers);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

async function serviceAuth(base: string, email: string): Promise<Json> {
  const response = await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: email });
  expect(response.status).toBe(200);
  return response.json();
}

describe('who may call the admin API', () => {
  it('only a configured operator token: none, a wrong one and an agent access token get 401 with WWW-Authenticate', async () => {
    const svc = await startAdmin();
    const { token: agentToken } = await accessToken(svc.base);
    for (const token of [undefined, 'x'.repeat(48), agentToken, `${ALICE}x`, ALICE.slice(0, -1)]) {
      const answer = await call(svc.base, '/registrations', { token });
      expect(answer.status, String(token)).toBe(401);
      expect(answer.body.error).toBe('operator_unauthorized');
      expect(answer.headers.get('www-authenticate')).toBe(`Bearer realm="${svc.base}/admin"`);
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    const refused = await call(svc.base, '/registration/revoke', { token: agentToken, body: { id: 'reg_x' } });
    expect(refused.status).toBe(401);
    expect((await call(svc.base, '/registrations', { token: ALICE })).status).toBe(200);
  });

  it('is not served at all when no operator is configured', async () => {
    const svc = await start();
    const response = await fetch(`${svc.base}/admin/api/registrations`, { headers: { authorization: `Bearer ${ALICE}` } });
    expect(response.status).toBe(404);
  });

  it('refuses bad input with a JSON 400 naming the field, never a 500', async () => {
    const svc = await startAdmin();
    const cases: [string, Json?][] = [
      ['/registrations?type=robot'],
      ['/registrations?limit=0'],
      ['/registrations?limit=101'],
      ['/registrations?from=yesterday'],
      ['/registrations?cursor=%E2%9C%93not-a-cursor'],
      ['/registrations?cursor=WzEsMl0'],
      ['/registration'],
      ['/rate-limits?address=not-an-ip'],
      ['/revocations', { by: 'planet', value: 'x' }],
      ['/revocations', { by: 'email' }],
      ['/registration/revoke', { id: 42 }],
      ['/rate-limits/clear', { address: '' }],
    ];
    for (const [path, body] of cases) {
      const answer = await call(svc.base, path, { token: ALICE, body });
      expect(answer.status, path).toBe(400);
      expect(answer.body.error, path).toBe('invalid_request');
    }
    const notJson = await fetch(`${svc.base}/admin/api/revocations`, { method: 'POST', headers: { authorization: `Bearer ${ALICE}`, 'content-type': 'application/json' }, body: '{' });
    expect(notJson.status).toBe(400);
    expect((await call(svc.base, '/registration?id=reg_nothing', { token: ALICE })).status).toBe(404);
  });
});

describe('finding registrations', () => {
  it('lists newest first, filters by email, type and state, and pages with a cursor', async () => {
    const svc = await startAdmin();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      made.push((await registerAnonymous(svc.base)).id);
      svc.clock.advance(1000);
    }
    const ada = await serviceAuth(svc.base, 'Ada@Example.com');
    svc.clock.advance(1000);

    const all = await call(svc.base, '/registrations', { token: ALICE });
    expect(all.status).toBe(200);
    expect(all.body.registrations.map((r: Json) => r.id)).toEqual([ada.id, ...[...made].reverse()]);
    expect(all.body.next_cursor).toBeUndefined();
    expect(all.body.registrations[0]).toMatchObject({ type: 'service_auth', state: 'claim_pending', login_hint: 'ada@example.com', user_email: null, provider: null });

    const byEmail = await call(svc.base, '/registrations?email=ADA%40example.com', { token: ALICE });
    expect(byEmail.body.registrations.map((r: Json) => r.id)).toEqual([ada.id]);
    const byType = await call(svc.base, '/registrations?type=anonymous', { token: ALICE });
    expect(byType.body.registrations).toHaveLength(5);
    expect((await call(svc.base, '/registrations?state=claimed', { token: ALICE })).body.registrations).toEqual([]);
    expect((await call(svc.base, '/registrations?state=claim_pending', { token: ALICE })).body.registrations.map((r: Json) => r.id)).toEqual([ada.id]);

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call(svc.base, `/registrations?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: ALICE });
      expect(page.body.registrations.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.registrations.map((r: Json) => r.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.body.registrations.map((r: Json) => r.id));

    const window = await call(svc.base, `/registrations?from=${new Date(svc.clock() - 3500).toISOString()}&to=${new Date(svc.clock() - 1500).toISOString()}`, { token: ALICE });
    expect(window.body.registrations.map((r: Json) => r.id)).toEqual([made[4], made[3]]);
  });

  it('finds a provider registration by provider issuer and client id, with the account it belongs to', async () => {
    const provider = await startProvider({ displayName: 'Acme Agents' });
    const { svc, base } = await trustedService(startAdmin, { providers: [provider], admin });
    const registration = await registerIdJag(base, provider.mintIdJag());
    await registerAnonymous(base);
    for (const query of [`provider=${encodeURIComponent(provider.issuer)}`, `client_id=${encodeURIComponent(provider.issuer)}`, 'email=ada%40example.com']) {
      const found = await call(base, `/registrations?${query}`, { token: ALICE });
      expect(found.body.registrations.map((r: Json) => r.id), query).toEqual([registration.id]);
      expect(found.body.registrations[0]).toMatchObject({ type: 'identity_assertion', state: 'claimed', user_email: 'ada@example.com', provider: provider.issuer, client_id: provider.issuer });
    }
    expect((await call(base, '/registrations?provider=https%3A%2F%2Fother.example', { token: ALICE })).body.registrations).toEqual([]);
    void svc;
  });

  it('shows one registration: its timeline and its live credentials, never their values', async () => {
    const svc = await startAdmin();
    const registration = await registerAnonymous(svc.base);
    svc.clock.advance(1000);
    const token = await accessTokenFor(svc.base, registration.identity.assertion);
    svc.clock.advance(1000);
    await accessTokenFor(svc.base, registration.identity.assertion);
    const answer = await call(svc.base, `/registration?id=${registration.id}`, { token: ALICE });
    expect(answer.status).toBe(200);
    expect(answer.body.registration).toMatchObject({ id: registration.id, type: 'anonymous', state: 'unclaimed' });
    expect(answer.body.timeline.map((e: Json) => e.type)).toEqual(['registration.created', 'token.issued', 'token.issued']);
    expect(answer.body.tokens.access).toMatchObject({ live: 2 });
    expect(answer.body.tokens.access.next_expiry).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(answer.body.tokens.refresh).toEqual({ live: 0, next_expiry: null, last_expiry: null });
    expect(JSON.stringify(answer.body)).not.toContain(token);
    expect(JSON.stringify(answer.body)).not.toContain(registration.identity.assertion);
  });
});

describe('revoking', () => {
  it('one registration: the agent is refused on its very next call, the action is audited with the operator', async () => {
    const svc = await startAdmin();
    const { registration, token } = await accessToken(svc.base);
    expect((await callApi(svc.base, token)).status).toBe(200);
    const revoked = await call(svc.base, '/registration/revoke', { token: BOB, body: { id: registration.id } });
    expect(revoked).toMatchObject({ status: 200, body: { id: registration.id, revoked: true, state: 'revoked_by_operator' } });
    expect((await callApi(svc.base, token)).status).toBe(401);
    const again = await call(svc.base, '/registration/revoke', { token: ALICE, body: { id: registration.id } });
    expect(again.body).toMatchObject({ revoked: false, state: 'revoked_by_operator' });
    const events = await svc.service.store.findMany(auditEvents, 'registration_id', registration.id);
    expect(events.find((e) => e.type === 'registration.revoked')?.data).toMatchObject({ reason: 'operator', operator: 'bob@ops.example' });
    expect((await call(svc.base, '/registration/revoke', { token: ALICE, body: { id: 'reg_nothing' } })).status).toBe(404);
  });

  it('in bulk by email: the preview counts what it will end, the revocation ends exactly those', async () => {
    const svc = await startAdmin();
    const mine = [await serviceAuth(svc.base, 'grace@example.com'), await serviceAuth(svc.base, 'grace@example.com')];
    const other = await serviceAuth(svc.base, 'linus@example.com');
    const preview = await call(svc.base, '/revocations', { token: ALICE, body: { by: 'email', value: 'grace@example.com', dry_run: true } });
    expect(preview.body).toEqual({ by: 'email', value: 'grace@example.com', would_revoke: 2 });
    const done = await call(svc.base, '/revocations', { token: ALICE, body: { by: 'email', value: 'grace@example.com' } });
    expect(done.body).toEqual({ by: 'email', value: 'grace@example.com', revoked: 2, finalized: 0 });
    const states = await Promise.all([...mine, other].map(async (r) => (await call(svc.base, `/registration?id=${r.id}`, { token: ALICE })).body.registration.state));
    expect(states).toEqual(['revoked_by_operator', 'revoked_by_operator', 'claim_pending']);
    expect((await call(svc.base, '/revocations', { token: ALICE, body: { by: 'email', value: 'grace@example.com', dry_run: true } })).body.would_revoke).toBe(0);
  });

  it('in bulk by provider: ends that provider\'s registrations only, for good; a later ID-JAG does not bring one back', async () => {
    const acme = await startProvider({ displayName: 'Acme Agents' });
    const other = await startProvider({ displayName: 'Other Agents' });
    const logger = recordingLogger();
    const { svc, base } = await trustedService(startAdmin, { providers: [acme, other], admin, logger });
    const acmeRegs = [await registerIdJag(base, acme.mintIdJag()), await registerIdJag(base, acme.mintIdJag({ sub: 'user-2', email: 'grace@example.com' }))];
    const otherReg = await registerIdJag(base, other.mintIdJag({ sub: 'user-9', email: 'linus@example.com' }));
    const tokens = await Promise.all([...acmeRegs, otherReg].map((r) => accessTokenFor(base, r.identity.assertion)));

    const preview = await call(base, '/revocations', { token: ALICE, body: { by: 'provider', value: acme.issuer, dry_run: true } });
    expect(preview.body.would_revoke).toBe(2);
    const done = await call(base, '/revocations', { token: ALICE, body: { by: 'provider', value: acme.issuer } });
    expect(done.body).toMatchObject({ revoked: 2, finalized: 0 });
    expect(logger.audit('admin.action')).toEqual([expect.objectContaining({ operator: 'alice@ops.example', action: 'bulk_revoke', by: 'provider', value: acme.issuer, revoked: 2 })]);
    expect(await Promise.all(tokens.map(async (t) => (await callApi(base, t)).status))).toEqual([401, 401, 200]);

    svc.clock.advance(2000);
    const back = await presentIdJag(base, acme.mintIdJag());
    expect(back.status).toBe(410);
    expect((await back.json()).reason).toBe('revoked_by_operator');
  });

  it('in bulk by provider, after the provider revoked one itself: counts that one as made final, not as ended', async () => {
    const acme = await startProvider({ displayName: 'Acme Agents' });
    const { base } = await trustedService(startAdmin, { providers: [acme], admin });
    const live = await registerIdJag(base, acme.mintIdJag());
    const withdrawn = await registerIdJag(base, acme.mintIdJag({ sub: 'user-2', email: 'grace@example.com' }));
    await expectSetAccepted(await deliverSet(base, acme.mintSet({ sub: 'user-2' })));
    expect((await call(base, `/registration?id=${withdrawn.id}`, { token: ALICE })).body.registration.state).toBe('revoked_by_provider');

    expect((await call(base, '/revocations', { token: ALICE, body: { by: 'provider', value: acme.issuer, dry_run: true } })).body.would_revoke).toBe(1);
    const done = await call(base, '/revocations', { token: ALICE, body: { by: 'provider', value: acme.issuer } });
    expect(done.body).toMatchObject({ revoked: 1, finalized: 1 });
    for (const id of [live.id, withdrawn.id]) {
      expect((await call(base, `/registration?id=${id}`, { token: ALICE })).body.registration.state).toBe('revoked_by_operator');
    }
    expect((await call(base, '/revocations', { token: ALICE, body: { by: 'provider', value: acme.issuer } })).body).toMatchObject({ revoked: 0, finalized: 0 });
  });
});

describe('providers, keys and rate limits', () => {
  it('lists each trusted provider with its keys and the security events it delivered; forged ones write nothing', async () => {
    const provider = await startProvider({ displayName: 'Acme Agents' });
    const stranger = await startProvider({ displayName: 'Not Trusted' });
    const { svc, base } = await trustedService(startAdmin, { providers: [provider], strangers: [stranger], admin });
    await registerIdJag(base, provider.mintIdJag());
    await expectSetAccepted(await deliverSet(base, provider.mintSet()));
    expect((await deliverSet(base, provider.mintSet({ aud: 'https://elsewhere.example' }))).status).toBe(400);
    // Posted by anyone: a bad signature in the trusted provider's name, and an untrusted issuer.
    for (let i = 0; i < 5; i++) expect((await deliverSet(base, provider.mintSet({}, { signature: 'garbage' }))).status).toBe(400);
    expect((await deliverSet(base, stranger.mintSet())).status).toBe(400);
    expect(await svc.service.store.get(providerEventStats, stranger.issuer)).toBeUndefined();
    const answer = await call(base, '/providers', { token: ALICE });
    expect(answer.body.providers).toHaveLength(1);
    const [listed] = answer.body.providers;
    expect(listed).toMatchObject({ issuer: provider.issuer, display_name: 'Acme Agents', keys: { jwks_uri: provider.jwksUri, error: null } });
    expect(listed.keys.kids).toEqual(provider.published);
    expect(listed.events).toMatchObject({ accepted: 1, refused: 1, last_refusal: 'invalid_audience' });
    expect(listed.events.last_accepted_at).toMatch(/^\d{4}-/);
  });

  it('lists the signing keys and rotates them: the new key signs, the old stays published; the rotation is audited', async () => {
    const logger = recordingLogger();
    const svc = await startAdmin({ logger });
    const before = await call(svc.base, '/signing-keys', { token: ALICE });
    expect(before.body.keys).toHaveLength(1);
    expect(before.body.keys[0]).toMatchObject({ alg: 'ES256', signing: true, published: true, retired_at: null });
    const rotated = await call(svc.base, '/signing-keys/rotate', { token: ALICE, method: 'POST' });
    expect(rotated.body.key.signing).toBe(true);
    const after = await call(svc.base, '/signing-keys', { token: ALICE });
    expect(after.body.keys.map((k: Json) => [k.kid, k.signing, k.published])).toEqual([
      [rotated.body.key.kid, true, true],
      [before.body.keys[0].kid, false, true],
    ]);
    const jwks = await (await fetch(`${svc.base}/.well-known/jwks.json`)).json();
    expect(jwks.keys.map((k: Json) => k.kid).sort()).toEqual(after.body.keys.map((k: Json) => k.kid).sort());
    expect(logger.audit('admin.action')).toEqual([expect.objectContaining({ operator: 'alice@ops.example', action: 'rotate_signing_key', kid: rotated.body.key.kid })]);
  });

  it('shows the limits running for an address and clears them; another address keeps its own', async () => {
    const logger = recordingLogger();
    const svc = await startAdmin({ logger, rateLimits: { anonymous: { perIp: 3, perService: 1000 } } });
    for (let i = 0; i < 3; i++) await registerAnonymous(svc.base);
    expect((await postJson(`${svc.base}/agent/identity`, { type: 'anonymous' })).status).toBe(429);

    const state = await call(svc.base, '/rate-limits?address=127.0.0.1', { token: ALICE });
    expect(state.body).toMatchObject({ address: '127.0.0.1', network: '127.0.0.1' });
    expect(state.body.limits).toEqual([{ option: 'rateLimits.anonymous.perIp', limit: 3, count: 4, resets_at: expect.stringMatching(/^\d{4}-/) }]);
    expect((await call(svc.base, '/rate-limits?address=203.0.113.9', { token: ALICE })).body.limits).toEqual([]);

    const cleared = await call(svc.base, '/rate-limits/clear', { token: ALICE, body: { address: '127.0.0.1' } });
    expect(cleared.body).toEqual({ address: '127.0.0.1', cleared: 1 });
    expect((await call(svc.base, '/rate-limits?address=127.0.0.1', { token: ALICE })).body.limits).toEqual([]);
    expect((await postJson(`${svc.base}/agent/identity`, { type: 'anonymous' })).status).toBe(200);
    expect(logger.audit('admin.action')).toEqual([expect.objectContaining({ operator: 'alice@ops.example', action: 'clear_rate_limits', address: '127.0.0.1', cleared: 1 })]);
  });
});
