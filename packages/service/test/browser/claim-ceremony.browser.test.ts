import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callApi, exchange, postForm, postJson, registerAnonymous, startService, type RunningService } from '../support/harness.ts';
import { launchChromium } from './chromium.ts';
import { startSmtpReceiver, type SmtpReceiver } from './smtp.ts';

/**
 * The claim ceremony in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * the human signs in with a code that the service mails through nodemailer to a real SMTP receiver
 * started here, then authorizes in each direction of profile.md §1, or denies. The test plays the
 * agent over plain HTTP. A second origin (another port on 127.0.0.1) serves the service's logo and
 * a page that tries to frame the claim page.
 *
 * Artifacts: test-artifacts/claim-page.png (and the read-back code page, and a phone-width view).
 */

const CLAIM_GRANT = 'urn:workos:agent-auth:grant-type:claim';
const SERVICE_NAME = 'Café Notes'; // non-ASCII on purpose: the mailed subject is RFC 2047-encoded
const TEST_TIMEOUT = 20_000;
const ACTION_TIMEOUT = 8_000;
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

type Json = Record<string, any>;

let smtp: SmtpReceiver | undefined;
let other: { server: Server; origin: string } | undefined;
let running: RunningService | undefined;
let browser: Browser | undefined;

/** The open service, SMTP receiver, browser (set in beforeAll; a test never runs without them). */
const svc = (): RunningService => running!;
const mail = (): SmtpReceiver => smtp!;

beforeAll(async () => {
  smtp = await startSmtpReceiver();
  other = await startOtherOrigin();
  running = await startService({
    name: SERVICE_NAME,
    logoUri: `${other.origin}/logo.svg`,
    mail: { smtp: { host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, from: 'authmd <no-reply@authmd.test>' },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  // Everything that was started is closed, even when beforeAll failed half-way.
  const closing: Promise<unknown>[] = [];
  if (browser) closing.push(browser.close());
  if (running) closing.push(running.close());
  if (other) {
    const { server } = other;
    server.closeAllConnections();
    closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
  }
  if (smtp) closing.push(smtp.close());
  const results = await Promise.allSettled(closing);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

// ——— one fresh browser context (cookies, storage) per test ———

let context: BrowserContext | undefined;
let page: Page;
/** Console messages mentioning the Content Security Policy, and uncaught page errors, of this test. */
let cspMessages: string[];
let pageErrors: string[];

beforeEach(async () => {
  context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  page = await context.newPage();
  cspMessages = [];
  pageErrors = [];
  page.on('console', (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) cspMessages.push(message.text());
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

// ——— the agent's side, over plain HTTP ———

async function registerServiceAuth(email: string): Promise<{ claimToken: string; verificationUri: string; agentCode: string }> {
  const response = await postJson(`${svc().base}/agent/identity`, { type: 'service_auth', login_hint: email });
  expect(response.status).toBe(200);
  const body: Json = await response.json();
  return { claimToken: body.claim.token, verificationUri: body.claim.attempt.verification_uri, agentCode: body.claim.user_code };
}

async function complete(claimToken: string, userCode: string): Promise<{ status: number; body: Json }> {
  const response = await postJson(`${svc().base}/agent/identity/claim/complete`, { claim_token: claimToken, user_code: userCode });
  return { status: response.status, body: await response.json() };
}

/** One poll of the v0.7 claim grant; the test clock moves past the polling interval first. */
async function poll(claimToken: string): Promise<{ status: number; body: Json }> {
  svc().clock.advance(5_000);
  const response = await postForm(`${svc().base}/oauth2/token`, { grant_type: CLAIM_GRANT, claim_token: claimToken });
  return { status: response.status, body: await response.json() };
}

function jwtPayload(token: string): Json {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

// ——— the human's side, in Chromium ———

/**
 * Opens the agent's verification_uri while signed out, goes through the emailed-code sign-in with the
 * code read from the SMTP receiver, and returns the response of the claim page it lands on.
 */
async function signInThroughClaimLink(verificationUri: string, email: string): Promise<{ status: number }> {
  await page.goto(verificationUri);
  expect(new URL(page.url()).pathname).toBe('/login');
  return signInHere(email, verificationUri);
}

/** On the sign-in page: email → code from the real mailbox → back at `expectedReturn`. */
async function signInHere(email: string, expectedReturn: string): Promise<{ status: number }> {
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await visible(page.getByRole('heading', { name: 'Check your email' }));

  const code = await mail().waitForCode(email, 10_000);
  expect(code).toMatch(/^\d{6}$/);
  const landed = page.waitForResponse((response) => response.url() === expectedReturn && response.request().method() === 'GET');
  await page.getByLabel('Code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const response = await landed;
  await page.waitForLoadState('load');
  return { status: response.status() };
}

/** Waits (bounded) until the element is visible; the error names the locator on timeout. */
async function visible(locator: Locator): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
}

function expectCleanConsole(): void {
  expect(cspMessages, 'no Content-Security-Policy violations in the console').toEqual([]);
  expect(pageErrors, 'no uncaught page errors').toEqual([]);
}

function expectPng(path: string): void {
  expect(existsSync(path), `${path} exists`).toBe(true);
  expect(statSync(path).size).toBeGreaterThan(1_000);
  expect(readFileSync(path).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
}

describe('the claim ceremony in headless Chromium, with the sign-in code from a real SMTP server', () => {
  it(
    'read-back: signs in with the emailed code, Authorize shows a code, the agent completes with it and writes notes',
    async () => {
      const agent = await registerServiceAuth('ada@example.com');
      const landed = await signInThroughClaimLink(agent.verificationUri, 'Ada@Example.com');
      expect(landed.status).toBe(200);

      // The claim page names who is asking, for which account, and what the agent gets.
      await visible(page.getByRole('heading', { name: 'Authorize this agent?' }));
      const text = await page.locator('main').innerText();
      expect(text).toContain(SERVICE_NAME);
      expect(text).toContain('that asked for ada@example.com');
      expect(text).toContain('as ada@example.com');
      expect(text).toContain('notes.write');
      expect(await page.title()).toBe(`Authorize this agent? · ${SERVICE_NAME}`);
      // The logo comes from another origin, which the page's img-src allows (no CSP report, and it rendered).
      expect(await page.locator('.brand img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);

      mkdirSync(ARTIFACTS, { recursive: true });
      const screenshot = join(ARTIFACTS, 'claim-page.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      expectPng(screenshot);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: join(ARTIFACTS, 'claim-page-narrow.png'), fullPage: true });
      await page.setViewportSize({ width: 1280, height: 800 });

      // Before Authorize the agent's /complete is refused: nothing was confirmed yet.
      expect((await complete(agent.claimToken, '000000')).body.error).toBe('claim_not_confirmed');

      await page.getByRole('button', { name: 'Authorize and show me a code' }).click();
      await visible(page.getByRole('heading', { name: 'Read this code to your agent' }));
      const pageCode = (await page.locator('[data-testid="page-code"]').innerText()).trim();
      expect(pageCode).toMatch(/^\d{6}$/);
      await page.screenshot({ path: join(ARTIFACTS, 'claim-page-code.png'), fullPage: true });

      const done = await complete(agent.claimToken, pageCode);
      expect(done.status).toBe(200);
      expect(done.body.status).toBe('claimed');
      expect(jwtPayload(done.body.identity.assertion)).toMatchObject({ email: 'ada@example.com', email_verified: true });

      const exchanged = await exchange(svc().base, done.body.identity.assertion);
      expect(exchanged.status).toBe(200);
      const token: Json = await exchanged.json();
      expect(token.scope.split(' ')).toContain('notes.write');
      const write = await callApi(svc().base, token.access_token, { method: 'POST' });
      expect(write.status).toBe(200);

      expectCleanConsole();
    },
    TEST_TIMEOUT,
  );

  it(
    'type-in (v0.7): an anonymous agent starts a claim, the human types its code, the agent’s poll gets the tokens',
    async () => {
      const anonymous = await registerAnonymous(svc().base);
      const preClaim: Json = await (await exchange(svc().base, anonymous.identity.assertion)).json();
      const started = await postJson(`${svc().base}/agent/identity/claim`, {
        type: 'service_auth',
        claim_token: anonymous.claim.token,
        login_hint: 'grace@example.com',
      });
      expect(started.status).toBe(200);
      const attempt: Json = await started.json();
      const claimToken: string = anonymous.claim.token;
      const agentCode: string = attempt.claim_attempt.user_code;
      expect(agentCode).toMatch(/^\d{6}$/);

      expect((await poll(claimToken)).body.error).toBe('authorization_pending');

      const landed = await signInThroughClaimLink(attempt.attempt.verification_uri, 'grace@example.com');
      expect(landed.status).toBe(200);
      await visible(page.getByText('that signed up on its own'));

      // A wrong code first: the page says so and keeps the form; the right one links the agent.
      const wrong = String((Number(agentCode) + 1) % 1_000_000).padStart(6, '0');
      const codeField = page.getByLabel('Does your agent show you a six-digit code?');
      await codeField.fill(wrong);
      const refused = page.waitForResponse((response) => response.url().endsWith('/claim/code'));
      await page.getByRole('button', { name: 'Authorize with this code' }).click();
      expect((await refused).status()).toBeGreaterThanOrEqual(400);
      await visible(page.locator('p.error'));
      expect((await poll(claimToken)).body.error).toBe('authorization_pending');

      await codeField.fill(agentCode);
      await page.getByRole('button', { name: 'Authorize with this code' }).click();
      await visible(page.getByRole('heading', { name: 'Agent linked' }));

      const polled = await poll(claimToken);
      expect(polled.status).toBe(200);
      expect(polled.body).toMatchObject({ token_type: 'Bearer', identity_assertion: expect.any(String), assertion_expires: expect.any(String) });
      expect(jwtPayload(polled.body.identity_assertion)).toMatchObject({ email: 'grace@example.com' });
      expect(polled.body.scope.split(' ')).toContain('notes.write');
      expect((await callApi(svc().base, polled.body.access_token, { method: 'POST' })).status).toBe(200);
      // The anonymous token from before the claim no longer works.
      expect((await callApi(svc().base, preClaim.access_token)).status).toBe(401);

      expectCleanConsole();
    },
    TEST_TIMEOUT,
  );

  it(
    'deny: the agent’s /complete gets 403 claim_denied and its poll gets access_denied',
    async () => {
      const agent = await registerServiceAuth('linus@example.com');
      expect((await poll(agent.claimToken)).body.error).toBe('authorization_pending');

      await signInThroughClaimLink(agent.verificationUri, 'linus@example.com');
      await page.getByRole('button', { name: 'Deny' }).click();
      await visible(page.getByRole('heading', { name: 'Denied' }));
      expect(await page.locator('main').innerText()).toContain('The agent was told no');

      const completed = await complete(agent.claimToken, agent.agentCode);
      expect(completed.status).toBe(403);
      expect(completed.body.error).toBe('claim_denied');
      const polled = await poll(agent.claimToken);
      expect(polled.status).toBe(400);
      expect(polled.body.error).toBe('access_denied');

      // Reloading the claim page afterwards does not offer Authorize again.
      await page.goto(agent.verificationUri);
      expect(await page.getByRole('button', { name: /^Authorize/ }).count()).toBe(0);

      expectCleanConsole();
    },
    TEST_TIMEOUT,
  );

  it(
    'wrong account: a request for alice seen by bob is a 403 "Not for this account" whose sign-out works',
    async () => {
      const agent = await registerServiceAuth('alice@example.com');
      const asBob = await signInThroughClaimLink(agent.verificationUri, 'bob@example.com');
      expect(asBob.status).toBe(403);
      await visible(page.getByRole('heading', { name: 'Not for this account' }));
      const text = await page.locator('main').innerText();
      expect(text).toContain('alice@example.com');
      expect(text).toContain('bob@example.com');
      expect(await page.getByRole('button', { name: /^Authorize/ }).count()).toBe(0);

      // Sign out: back on the sign-in page, on the way to the same claim page; signing in as alice shows it.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await visible(page.getByRole('heading', { name: 'Sign in' }));
      const login = new URL(page.url());
      expect(login.pathname).toBe('/login');
      expect(login.searchParams.get('return_to')).toBe(new URL(agent.verificationUri).pathname + new URL(agent.verificationUri).search);
      const session = (await context!.cookies()).filter((cookie) => /session/i.test(cookie.name) && cookie.value !== '');
      expect(session, 'no session cookie left after sign-out').toEqual([]);

      const asAlice = await signInHere('alice@example.com', agent.verificationUri);
      expect(asAlice.status).toBe(200);
      await visible(page.getByRole('heading', { name: 'Authorize this agent?' }));
      expect(await page.locator('main').innerText()).toContain('as alice@example.com');

      expectCleanConsole();
    },
    TEST_TIMEOUT,
  );

  it(
    'the claim page cannot be framed by another origin, even for a signed-in user',
    async () => {
      const agent = await registerServiceAuth('frame@example.com');
      await signInThroughClaimLink(agent.verificationUri, 'frame@example.com');
      await visible(page.getByRole('heading', { name: 'Authorize this agent?' }));
      expectCleanConsole(); // the normal pages: no violations

      // Chromium does fetch the framed claim page (the session cookie goes along: same site, other port)...
      const framedResponse = page.waitForResponse((response) => response.url() === agent.verificationUri);
      await page.goto(`${other!.origin}/frame.html?src=${encodeURIComponent(agent.verificationUri)}`);
      const response = await framedResponse;
      expect(response.status()).toBe(200);
      const headers = await response.allHeaders();
      expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(headers['x-frame-options']).toBe('DENY');

      // ...and refuses to show it: the console says why, and the frame holds no claim page.
      await expect
        .poll(() => cspMessages.some((message) => message.includes("frame-ancestors 'none'")), { timeout: ACTION_TIMEOUT })
        .toBe(true);
      const control = page.frame({ name: 'control' });
      expect(await control?.locator('#control-text').innerText()).toBe('framed page loaded'); // framing itself works
      const framed = page.frame({ name: 'claim' });
      expect(framed).toBeTruthy();
      // Chromium replaces a refused frame with its error page (older builds leave it blank).
      expect(framed!.url()).toMatch(/^(chrome-error:|about:blank$)/);
      const content = await framed!.content().catch(() => '');
      expect(content).not.toContain('Authorize');
      expect(content).not.toContain('name="csrf"');
      expect(await framed!.locator('form').count().catch(() => 0)).toBe(0);
      expect(pageErrors).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

// ——— the other origin: the logo, and a page that frames whatever it is given ———

const LOGO = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#2456d6"/><path d="M18 20h28v4H18zm0 10h28v4H18zm0 10h18v4H18z" fill="#fff"/></svg>`;

async function startOtherOrigin(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/logo.svg') {
      res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'no-store' });
      return res.end(LOGO);
    }
    if (url.pathname === '/framed.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end('<!doctype html><title>framed</title><p id="control-text">framed page loaded</p>');
    }
    if (url.pathname === '/frame.html') {
      const src = (url.searchParams.get('src') ?? '').replace(/&/g, '&amp;').replace(/"/g, '&quot;');
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      return res.end(
        `<!doctype html><title>attacker</title><h1>Win a prize!</h1>` +
          `<iframe name="claim" src="${src}" width="800" height="600"></iframe>` +
          `<iframe name="control" src="/framed.html" width="300" height="100"></iframe>`,
      );
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
