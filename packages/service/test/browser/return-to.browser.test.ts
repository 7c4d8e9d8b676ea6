import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../support/harness.ts';
import { launchChromium } from './chromium.ts';
import { startSmtpReceiver, type SmtpReceiver } from './smtp.ts';

/**
 * `return_to` after sign-in, checked where it matters: in a real Chromium following the service's
 * redirects. A browser drops tabs and newlines anywhere in a URL (WHATWG URL parser), so
 * `Location: /<TAB>/evil.example` is `//evil.example`, another site. Every sign-in here reads its
 * code from the real SMTP receiver. Other host names resolve to nothing (see chromium.ts), so a
 * redirect off the site shows up as a request to that host and never reaches a network.
 */

const TEST_TIMEOUT = 20_000;
const ACTION_TIMEOUT = 8_000;

const hostile = [
  '/\t/evil.example/phish',
  '/\t\\evil.example/phish',
  '//evil.example/phish',
  '/\\evil.example/phish',
];

/**
 * Paths of this site that the URL parser normalises into `//evil.example/phish` (issue 10): dot
 * segments, `%2e`, backslashes, a tab. The service once answered them with that very Location.
 */
const normalisedAway = [
  '/.//evil.example/phish',
  '/..//evil.example/phish',
  '/%2e//evil.example/phish',
  '/./\\evil.example/phish',
  '/a/..//evil.example/phish',
  '/.\t//evil.example/phish',
];

let smtp: SmtpReceiver | undefined;
let running: RunningService | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
/** Requests this test's page made to any host but the service's. */
let offSite: string[];
let cspMessages: string[];
let accounts = 0;

beforeAll(async () => {
  smtp = await startSmtpReceiver();
  running = await startService({
    mail: { smtp: { host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, from: 'authmd <no-reply@authmd.test>' },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  const results = await Promise.allSettled([browser?.close(), running?.close(), smtp?.close()]);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

beforeEach(async () => {
  context = await browser!.newContext();
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  page = await context.newPage();
  offSite = [];
  cspMessages = [];
  const serviceHost = new URL(running!.base).host;
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (/^https?:$/.test(url.protocol) && url.host !== serviceHost) offSite.push(request.url());
  });
  page.on('console', (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) cspMessages.push(message.text());
  });
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** A new address per sign-in (the service sends at most 5 codes an hour to one address). */
function newEmail(): string {
  return `user${++accounts}@example.com`;
}

/** On the sign-in form: email, then the code from the mailbox; resolves once the code form is submitted. */
async function submitSignIn(email: string, options: { postedReturnTo?: string } = {}): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.getByRole('heading', { name: 'Check your email' }).waitFor({ state: 'visible' });
  if (options.postedReturnTo !== undefined) {
    // The code form posts return_to as given, not as the page wrote it (a form made elsewhere with a valid CSRF pair).
    await page.locator('input[name="return_to"]').evaluate((input, value) => void ((input as HTMLInputElement).value = value), options.postedReturnTo);
  }
  await page.getByLabel('Code').fill(await smtp!.waitForCode(email, 10_000));
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/**
 * Signs this test's browser in: through the form and a mailed code the first time, then with that
 * session's cookies, since these cases check where a signed-in browser goes, not how it signed in.
 */
let signedIn: Awaited<ReturnType<BrowserContext['cookies']>> | undefined;
async function beSignedIn(): Promise<void> {
  if (signedIn) return context!.addCookies(signedIn);
  await page.goto(`${running!.base}/login`);
  await submitSignIn(newEmail());
  await page.waitForURL((url) => url.pathname !== '/login', { timeout: ACTION_TIMEOUT });
  signedIn = await context!.cookies();
  expect(signedIn, 'the session cookie').not.toHaveLength(0);
}

function expectStillOnTheService(): void {
  expect(offSite, 'requests to other sites').toEqual([]);
  expect(new URL(page.url()).origin, 'the page the browser ends on').toBe(new URL(running!.base).origin);
}

describe('return_to in Chromium: signing in never takes the browser to another site', () => {
  it(
    'a path of this site is followed after the code step, query included',
    async () => {
      await page.goto(`${running!.base}/login?return_to=${encodeURIComponent('/api/notes?x=1&y=2')}`);
      await submitSignIn(newEmail());
      await page.waitForURL((url) => url.pathname === '/api/notes', { timeout: ACTION_TIMEOUT });
      expect(new URL(page.url()).search).toBe('?x=1&y=2');
      expectStillOnTheService();
      expect(cspMessages).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it.each([...hostile, ...normalisedAway])(
    'GET /login when already signed in does not leave the site: %j',
    async (returnTo) => {
      await beSignedIn();

      // A signed-in browser at /login is sent straight on to return_to.
      await page.goto(`${running!.base}/login?return_to=${encodeURIComponent(returnTo)}`).catch(() => undefined);
      await page.waitForLoadState('load').catch(() => undefined);
      expectStillOnTheService();
      expect(new URL(page.url()).pathname).toBe('/');
    },
    TEST_TIMEOUT,
  );

  it.each(hostile)(
    'after the code step the browser lands on a page of this site: %j',
    async (returnTo) => {
      await page.goto(`${running!.base}/login?return_to=${encodeURIComponent(returnTo)}`);
      await submitSignIn(newEmail());
      // The code form posts to /login/code, which redirects; the browser must arrive somewhere on this site.
      await page.waitForURL((url) => url.pathname !== '/login', { timeout: 3_000 }).catch(() => undefined);
      expectStillOnTheService();
      expect(new URL(page.url()).pathname, 'stuck on the sign-in page after a correct code').not.toBe('/login');
      expect(cspMessages, 'a redirect blocked by the pages’ own CSP (form-action)').toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it.each(normalisedAway)(
    'the code step posting a path that normalises to //host lands on a page of this site: %j',
    async (returnTo) => {
      await page.goto(`${running!.base}/login`);
      await submitSignIn(newEmail(), { postedReturnTo: returnTo });
      await page.waitForURL((url) => url.pathname !== '/login' && url.pathname !== '/login/code', { timeout: 3_000 }).catch(() => undefined);
      expectStillOnTheService();
      expect(new URL(page.url()).pathname, 'where the code step sent the browser').toBe('/');
      expect(cspMessages, 'a redirect blocked by the pages’ own CSP (form-action)').toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
