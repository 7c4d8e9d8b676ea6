import { describe, expect, it } from 'vitest';
import { accessTokenFor, callApi, exchange, registerAnonymous, servicePerTest } from '../support/harness.ts';
import { Browser, parseForms } from '../claim/browser.ts';
import { attemptToken, authorize, claimByReadBack, claimStart, completeClaim, jwtPayload, signedIn } from '../claim/flows.ts';
import { expectNotLinkedTo, presentIdJag, registerIdJag, trustedService, tryToConfirmAs, type Json } from './setup.ts';
import { providerPerTest } from './test-provider.ts';

/**
 * Matching an ID-JAG to a user (protocol-reference §2.12, profile.md §2, standards.md A15 "Account
 * takeover via asserted email"): a known (iss, sub) or a new user is a clean 200; a verified email or
 * phone of an existing account is a 401 interaction_required with a ceremony that only that account
 * can confirm, on a page that names the provider by the trust list's display name.
 */
const start = servicePerTest();
const startProvider = providerPerTest();

async function setup() {
  const provider = await startProvider({ displayName: 'Acme Agents' });
  const { svc, base } = await trustedService(start, { providers: [provider] });
  return { provider, svc, base };
}

/** A 401 interaction_required with its envelope; returns the body. */
async function expectStepUp(response: Response): Promise<Json> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(401);
  expect(body.error).toBe('interaction_required');
  const challenge = response.headers.get('www-authenticate') ?? '';
  expect(challenge.startsWith('AgentAuth error="interaction_required"'), challenge).toBe(true);
  expect(challenge).toMatch(/error_description="[^"\\]+"$/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(body.type).toBe('identity_assertion');
  expect(body.identity).toBeUndefined();
  expect(body.identity_assertion).toBeUndefined();
  expect(body.claim.token).toMatch(/^clm_/);
  expect(body.claim.attempt.verification_uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/claim\?token=cvt_/);
  // The v0.7 spelling of the same envelope, with no key colliding with the current one.
  expect(body.registration_id).toBe(body.id);
  expect(body.registration_type).toBe('identity_assertion');
  expect(body.claim_token).toBe(body.claim.token);
  expect(body.claim_url).toBe(body.claim.url);
  expect(body.claim_token_expires).toBe(body.claim.expires_at);
  expect(body.claim.user_code).toMatch(/^\d{6}$/);
  expect(body.claim.verification_uri).toBe(body.claim.attempt.verification_uri);
  expect(body.claim.interval).toBe(5);
  expect(body.post_claim_scopes).toEqual(['notes.read', 'notes.write']);
  expect(body.scopes).toEqual({ post_claim: ['notes.read', 'notes.write'] });
  return body;
}

describe('clean matches', () => {
  it('a new email: JIT user, 200 with the registration envelope in both spellings', async () => {
    const { provider, base } = await setup();
    const response = await presentIdJag(base, provider.mintIdJag({ email: 'new@example.com' }));
    const body = await response.json();
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.headers.get('pragma')).toBe('no-cache');
    expect(Object.keys(body).sort()).toEqual(['assertion_expires', 'id', 'identity', 'identity_assertion', 'registration_id', 'registration_type', 'scopes', 'type']);
    expect(body.type).toBe('identity_assertion');
    expect(body.id).toMatch(/^reg_/);
    expect(Object.keys(body.identity).sort()).toEqual(['assertion', 'expires_at']);
    expect(body.scopes).toEqual(['notes.read', 'notes.write']);
    expect(body.registration_id).toBe(body.id);
    expect(body.registration_type).toBe('identity_assertion');
    expect(body.identity_assertion).toBe(body.identity.assertion);
    expect(body.assertion_expires).toBe(body.identity.expires_at);
    expect(new Date(body.identity.expires_at).toISOString()).toBe(body.identity.expires_at);
    const claims = jwtPayload(body.identity.assertion);
    expect(claims.sub).toBe(body.id);
    expect(claims.email).toBe('new@example.com');
  });

  it('the assertion exchanges for the post-claim scopes, which the API honours', async () => {
    const { provider, base } = await setup();
    const body = await registerIdJag(base, provider.mintIdJag({ email: 'new@example.com' }));
    const response = await exchange(base, body.identity.assertion);
    const token = await response.json();
    expect(response.status).toBe(200);
    expect(token.scope).toBe('notes.read notes.write');
    expect(token.refresh_token).toBeUndefined();
    expect((await callApi(base, token.access_token, { method: 'POST' })).status).toBe(200);
  });

  it('the same (iss, sub) again gets the same registration, a new assertion, and the old one keeps working', async () => {
    const { provider, base } = await setup();
    const first = await registerIdJag(base, provider.mintIdJag({ sub: 'alice', email: 'alice@example.com' }));
    const second = await registerIdJag(base, provider.mintIdJag({ sub: 'alice', email: 'alice@example.com' }));
    expect(second.id).toBe(first.id);
    expect(second.identity.assertion).not.toBe(first.identity.assertion);
    expect((await exchange(base, second.identity.assertion)).status).toBe(200);
  });

  it('the same (iss, sub) with a changed email is still the same registration (the link, not the email, decides)', async () => {
    const { provider, base } = await setup();
    const first = await registerIdJag(base, provider.mintIdJag({ sub: 'alice', email: 'alice@example.com' }));
    const second = await registerIdJag(base, provider.mintIdJag({ sub: 'alice', email: 'alice.new@example.com' }));
    expect(second.id).toBe(first.id);
  });

  it('two subs of one provider with different emails are two registrations', async () => {
    const { provider, base } = await setup();
    const a = await registerIdJag(base, provider.mintIdJag({ sub: 'a', email: 'a@example.com' }));
    const b = await registerIdJag(base, provider.mintIdJag({ sub: 'b', email: 'b@example.com' }));
    expect(a.id).not.toBe(b.id);
  });
});

describe('a first link to an existing account: step-up', () => {
  it('a verified email of an account made by signing in → 401 interaction_required with a ceremony', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada-at-acme', email: 'ADA@Example.com' })));
  });

  it('a verified email of an account made by a service_auth claim → 401 interaction_required', async () => {
    const { provider, base } = await setup();
    await claimByReadBack(base, { type: 'service_auth', email: 'grace@example.com' });
    await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'grace', email: 'grace@example.com' })));
  });

  it('a verified phone of an existing (JIT) account → 401 interaction_required', async () => {
    const { provider, base } = await setup();
    await registerIdJag(base, provider.mintIdJag({ sub: 'first', email: undefined, email_verified: undefined, phone_number: '+15555550199', phone_number_verified: true }));
    await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'second', email: undefined, email_verified: undefined, phone_number: '+15555550199', phone_number_verified: true })));
  });

  it('an email another provider\'s JIT user holds → step-up, never a silent link', async () => {
    const a = await startProvider({ displayName: 'Provider A' });
    const b = await startProvider({ displayName: 'Provider B' });
    const { base } = await trustedService(start, { providers: [a, b] });
    const first = await registerIdJag(base, a.mintIdJag({ sub: 'x', email: 'shared@example.com' }));
    const body = await expectStepUp(await presentIdJag(base, b.mintIdJag({ sub: 'x', email: 'shared@example.com' })));
    expect(body.id).not.toBe(first.id);
  });

  it('the claim page, signed in as that account, names the provider by its displayName (never the provider\'s own client name)', async () => {
    const { provider, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada', client_id: provider.cimdUrl })));
    const page = await browser.open(step.claim.attempt.verification_uri);
    expect(page.status, page.html).toBe(200);
    expect(page.html).toMatch(/<title>[^<]*Link Acme Agents to your account\?[^<]*<\/title>/);
    expect(page.html).toContain('Link Acme Agents to your account?');
    expect(page.html).toContain('<b>Acme Agents</b>');
    expect(page.html).not.toContain('Provider-Chosen Name');
  });

  it('after the ceremony (read-back via /complete) the next ID-JAG of that (iss, sub) is a clean 200 with the same registration', async () => {
    const { provider, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    // No tokens before the human confirms.
    const code = await authorize(browser, step.claim.attempt.verification_uri);
    const completed = await completeClaim(base, step.claim.token, code);
    const claimed = await completed.json();
    expect(completed.status, JSON.stringify(claimed)).toBe(200);
    expect(claimed.id).toBe(step.id);
    expect(jwtPayload(claimed.identity.assertion).email).toBe('ada@example.com');
    const token = await accessTokenFor(base, claimed.identity.assertion);
    expect((await callApi(base, token)).status).toBe(200);

    const clean = await registerIdJag(base, provider.mintIdJag({ sub: 'ada' }));
    expect(clean.id).toBe(step.id);
    expect(jwtPayload(clean.identity.assertion).email).toBe('ada@example.com');
    expect((await exchange(base, clean.identity.assertion)).status).toBe(200);
  });

  it('the agent gets no tokens from the step-up registration before the human confirms', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    // Still a step-up on the next call: no silent link happened.
    await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    expect(step.identity).toBeUndefined();
  });

  it('signed in as another account, the claim page is a 403', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    const eve = await signedIn(base, 'eve@example.com');
    const page = await eve.open(step.claim.attempt.verification_uri);
    expect(page.status).toBe(403);
    expect(page.html).not.toContain('data-testid="page-code"');
    // …and Authorize cannot be forced either, even with a valid CSRF token of that browser.
    const csrf = Object.fromEntries(Object.entries(parseForms(page.html)[0]?.fields ?? {}).filter(([name]) => name !== 'return_to'));
    expect(Object.keys(csrf).length).toBeGreaterThan(0);
    const forced = await eve.post('/claim/authorize', { ...csrf, token: attemptToken(step.claim.attempt.verification_uri) });
    expect(forced.status).not.toBe(200);
  });

  it('not signed in, the claim page sends the browser to sign in first', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    const page = await new Browser(base).get(step.claim.attempt.verification_uri);
    expect(page.status).toBeGreaterThanOrEqual(300);
    expect(page.status).toBeLessThan(400);
    expect(page.location).toMatch(/\/login\?/);
  });

  it('repeating the step-up call replaces the claim token: the old one is invalid_claim_token, its page is dead', async () => {
    const { provider, base } = await setup();
    const browser = await signedIn(base, 'ada@example.com');
    const first = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    const second = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    expect(second.id).toBe(first.id);
    expect(second.claim.token).not.toBe(first.claim.token);

    const old = await claimStart(base, { type: 'service_auth', claim_token: first.claim.token, login_hint: 'ada@example.com' });
    expect(old.status).toBe(401);
    expect((await old.json()).error).toBe('invalid_claim_token');
    expect((await browser.open(first.claim.attempt.verification_uri)).status).not.toBe(200);

    const code = await authorize(browser, second.claim.attempt.verification_uri);
    expect((await completeClaim(base, first.claim.token, code)).status).not.toBe(200);
    expect((await completeClaim(base, second.claim.token, code)).status).toBe(200);
  });

  it('a step-up ceremony cannot be re-pointed to another account by re-minting the attempt with another login_hint', async () => {
    const { provider, base } = await setup();
    await signedIn(base, 'ada@example.com');
    const mallory = await signedIn(base, 'mallory@example.com');
    const step = await expectStepUp(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })));
    await tryToConfirmAs(base, mallory, step.claim.token, 'mallory@example.com');
    // Whatever the service refused along the way, ada's provider account must not now lead into mallory's account.
    await expectNotLinkedTo(await presentIdJag(base, provider.mintIdJag({ sub: 'ada' })), 'mallory@example.com');
  });

  it('an anonymous registration does not make an account: its later ID-JAG with any email is a clean JIT match', async () => {
    const { provider, base } = await setup();
    await registerAnonymous(base);
    await registerIdJag(base, provider.mintIdJag({ sub: 'x', email: 'x@example.com' }));
  });
});

