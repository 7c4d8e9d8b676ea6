import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../packages/service/test/browser/chromium.ts';
import type { RunningDemoProvider } from '../src/provider/index.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';
import { ProviderSession, ServiceClient } from './agent-verified-http.ts';

/**
 * The demo provider's page in a real headless Chromium (Debian's `chromium`, driven by playwright-core),
 * next to the demo service as `npm start` runs them: a user signs in, gives agents consent for the demo
 * service, an agent (over HTTP) uses it, the user revokes it and the agent is refused at once. The page
 * is served with `Referrer-Policy: no-referrer`, so Chromium posts its forms with `Origin: null`; a
 * form on another origin posting to the provider is refused even when it carries a valid token.
 *
 * Artifact: test-artifacts/demo-provider-page.png.
 */

const ACTION_TIMEOUT = 8_000;
// Chromium on a shared two-core machine: generous, but bounded.
const TEST_TIMEOUT = 45_000;
const ARTIFACTS = join(fileURLToPath(new URL('../../../', import.meta.url)), 'test-artifacts');

let dataDir: string | undefined;
let demo: RunningDemo | undefined;
let attacker: { server: Server; origin: string } | undefined;
let browser: Browser | undefined;

const provider = (): RunningDemoProvider => demo!.provider!;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'authmd-provider-browser-'));
  demo = await startDemo({ port: 0, providerPort: 0, dataDir });
  attacker = await startOtherOrigin();
  browser = await launchChromium();
});

afterAll(async () => {
  const closing: Promise<unknown>[] = [];
  if (browser) closing.push(browser.close());
  if (demo) closing.push(demo.close());
  if (attacker) {
    const { server } = attacker;
    server.closeAllConnections();
    closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
  }
  const results = await Promise.allSettled(closing);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

let context: BrowserContext | undefined;
let page: Page;
let pageErrors: string[];

beforeEach(async () => {
  context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  page = await context.newPage();
  pageErrors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

async function visible(locator: Locator): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
}

/** Clicks a submit button, expects the form's 303 to `expectedPath` and waits for that page; returns the POST's request headers. */
async function submit(button: Locator, expectedPath: string): Promise<Record<string, string>> {
  const answered = page.waitForResponse((response) => response.request().method() === 'POST');
  await button.click();
  const response = await answered;
  const problem = response.status() === 303 ? '' : /<p class="error">([^<]*)</.exec(await response.text())?.[1];
  expect(response.status(), `the form's answer (${problem})`).toBe(303);
  expect(await response.headerValue('location')).toBe(expectedPath);
  await page.waitForURL((url) => url.pathname + url.search === expectedPath);
  await page.waitForLoadState('load');
  return response.request().allHeaders();
}

async function signIn(email: string): Promise<Record<string, string>> {
  await page.goto(`${provider().url}/`);
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.getByPlaceholder('ada@example.com').fill(email);
  return submit(page.getByRole('button', { name: 'Sign in', exact: true }), '/?done=signed-in');
}

describe('the demo provider’s page in headless Chromium', () => {
  it('signs in, gives consent for the demo service, and revokes it: the agent is refused at once', async () => {
    const sent = await signIn('ada@example.com');
    // Why the old check failed: the page is no-referrer, so Chromium's form posts say "Origin: null".
    expect(sent.origin).toBe('null');
    expect(sent['sec-fetch-site']).toBe('same-origin');
    const main = page.locator('main');
    await visible(page.getByText('Signed in.', { exact: true }));
    expect(await main.innerText()).toContain('Signed in as Ada Lovelace (ada@example.com)');
    expect(await main.innerText()).toContain('No grants: no agent can obtain an ID-JAG for you.');

    await submit(page.getByRole('button', { name: `Allow agents at ${demo!.url}` }), '/?done=granted');
    await visible(page.getByText('Consent recorded', { exact: false }));
    const row = page.locator('tbody tr').filter({ hasText: demo!.url });
    await visible(row);
    expect((await row.locator('td').allInnerTexts()).slice(0, 3)).toEqual([demo!.url, 'always', 'active']);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'demo-provider-page.png'), fullPage: true });

    // The consent is real: an agent acting for Ada obtains an ID-JAG and registers at the service.
    const agent = await ProviderSession.login(provider().url, 'ada@example.com');
    const service = new ServiceClient(demo!.url);
    const connected = await service.connect(await agent.idJag(demo!.url));
    expect(await service.listNotes(connected.token)).toBe(200);

    await submit(row.getByRole('button', { name: 'Revoke' }), '/?done=revoked');
    await visible(page.getByText('Consent revoked.', { exact: false }));
    expect(await main.innerText()).toContain('The service has been told');
    expect(await main.innerText()).toContain('No grants: no agent can obtain an ID-JAG for you.');
    const notice = page.locator('tbody tr[data-jti]');
    expect((await notice.locator('td').allInnerTexts()).slice(0, 3)).toEqual([demo!.url, 'delivered', '1']);
    // Revoked before the page answered: the agent's token is refused on its very next call.
    expect(await service.listNotes(connected.token)).toBe(401);
    expect((await agent.mint(demo!.url)).body.error).toBe('consent_required');

    await submit(page.getByRole('button', { name: 'Sign out' }), '/?done=signed-out');
    await visible(page.getByRole('heading', { name: 'Sign in' }));
    expect(pageErrors).toEqual([]);
  }, TEST_TIMEOUT);

  it('refuses a form posted from another origin, even one carrying a valid token', async () => {
    await signIn('grace@example.com');
    // The attacker got hold of this browser's token somehow; it still cannot post from its own origin.
    const csrf = await page.locator('input[name="csrf"]').first().inputValue();
    for (const policy of ['strict-origin-when-cross-origin', 'no-referrer']) {
      await page.goto(`${attacker!.origin}/?policy=${policy}&csrf=${encodeURIComponent(csrf)}&to=${encodeURIComponent(provider().url)}`);
      const answer = page.waitForResponse((response) => response.request().method() === 'POST');
      await page.getByRole('button', { name: 'Claim your prize' }).click();
      const response = await answer;
      const headers = await response.request().allHeaders();
      expect(headers.origin, policy).toBe(policy === 'no-referrer' ? 'null' : attacker!.origin);
      expect(headers['sec-fetch-site'], policy).toBe('same-site'); // another port of 127.0.0.1
      expect(response.status(), policy).toBe(403);
      await visible(page.getByText('This form has expired or did not come from this page.', { exact: false }));
    }
    // Grace is still signed in as herself, and no sign-in as Eve happened.
    await page.goto(`${provider().url}/`);
    expect(await page.locator('main').innerText()).toContain('Signed in as Grace Hopper');
  }, TEST_TIMEOUT);
});

/**
 * Another origin on 127.0.0.1 (another port, so the same site): a page with a form that posts a
 * sign-in as Eve to the provider, with a token given in the query, under the referrer policy given.
 * No scripts: the user clicks.
 */
async function startOtherOrigin(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const html = `<!doctype html><html><head><title>Prize</title></head><body>
<form method="post" action="${esc(url.searchParams.get('to') ?? '')}/ui/sign-in">
<input type="hidden" name="email" value="eve@example.com"><input type="hidden" name="csrf" value="${esc(url.searchParams.get('csrf') ?? '')}">
<button type="submit">Claim your prize</button></form></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Referrer-Policy': url.searchParams.get('policy') ?? 'no-referrer', 'Content-Length': Buffer.byteLength(html) });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
