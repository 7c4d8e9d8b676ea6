import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerIdJag, trustedService } from '../agent-verified/setup.ts';
import { startProvider, type TestProvider } from '../agent-verified/test-provider.ts';
import { accessTokenFor, callApi, startService, type HarnessOptions, type RunningService } from '../support/harness.ts';
import { launchChromium, openPage } from './chromium.ts';
import { startSmtpReceiver, type SmtpReceiver } from './smtp.ts';

/**
 * The operator's console in a real Chromium (issue 15): an operator signs in with the emailed code,
 * finds an agent by its user's email, reads its timeline and revokes it, and the agent's next call
 * is refused; a bulk revocation by provider shows how many it will end and ends exactly those; a
 * signed-in person who is not an operator is refused. Screenshots go to test-artifacts/admin/.
 */

const ACTION_TIMEOUT = 8_000;
const OPERATOR = 'ops@example.com';
const SHOTS = 'test-artifacts/admin';

let smtp: SmtpReceiver;
let browser: Browser;
let providers: TestProvider[] = [];
let services: RunningService[] = [];
let context: BrowserContext;
let page: Page;
let cspMessages: string[];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  smtp = await startSmtpReceiver();
  browser = await launchChromium();
});

afterAll(async () => {
  await Promise.allSettled([browser?.close(), smtp?.close()]);
});

beforeEach(async () => {
  ({ context, page, cspMessages } = await openPage(browser, { width: 1280, height: 900 }, ACTION_TIMEOUT));
});

afterEach(async () => {
  await context?.close();
  await Promise.all([...services.map((s) => s.close()), ...providers.map((p) => p.close())]);
  services = [];
  providers = [];
});

/** A service trusting `count` providers, mailing through the SMTP receiver, with one operator. */
async function setup(count: number): Promise<{ base: string; acme: TestProvider; others: TestProvider[] }> {
  providers = await Promise.all(Array.from({ length: count }, (_, i) => startProvider({ displayName: i === 0 ? 'Acme Agents' : `Other Agents ${i}` })));
  const start = async (options?: HarnessOptions) => {
    const running = await startService(options);
    services.push(running);
    return running;
  };
  const { base } = await trustedService(start, {
    providers,
    admin: { operators: [OPERATOR] },
    mail: { smtp: { host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, from: 'authmd <no-reply@authmd.test>' },
  });
  return { base, acme: providers[0]!, others: providers.slice(1) };
}

/** Opens the console: the service sends the browser to sign in, and back to the console after the emailed code. */
async function signIn(base: string, email: string): Promise<void> {
  await page.goto(`${base}/admin`);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.getByLabel('Code').fill(await smtp.waitForCode(email, 10_000));
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** An agent registered through `provider` for `email`, with a working access token. */
async function agentFor(base: string, provider: TestProvider, sub: string, email: string): Promise<{ id: string; token: string }> {
  const registration = await registerIdJag(base, provider.mintIdJag({ sub, email }));
  const token = await accessTokenFor(base, registration.identity.assertion);
  expect((await callApi(base, token)).status).toBe(200);
  return { id: registration.id, token };
}

async function noSidewaysScroll(): Promise<void> {
  const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  expect(scrollWidth, 'the page never scrolls sideways').toBeLessThanOrEqual(innerWidth);
}

describe('the admin console in Chromium', () => {
  it('an operator finds an agent by its user\'s email, reads its timeline, revokes it, and the agent is refused at once', { timeout: 60_000 }, async () => {
    const { base, acme } = await setup(1);
    const grace = await agentFor(base, acme, 'grace-1', 'grace@example.com');
    const linus = await agentFor(base, acme, 'linus-1', 'linus@example.com');

    await signIn(base, OPERATOR);
    await page.getByRole('heading', { name: 'Registrations' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/admin');
    await expect(page.getByText(`Operator: ${OPERATOR}`).count()).resolves.toBe(1);
    await page.screenshot({ path: `${SHOTS}/registrations.png`, fullPage: true });

    await page.getByLabel('User email').fill('grace@example.com');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = page.locator('tbody tr');
    await expect(rows.count()).resolves.toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('grace@example.com');

    await page.getByRole('link', { name: grace.id }).click();
    await page.getByRole('heading', { name: `Registration ${grace.id}` }).waitFor();
    await expect(page.getByTestId('state').textContent()).resolves.toBe('claimed');
    const timeline = await page.locator('h2:has-text("Timeline") + .scroll tbody').textContent();
    expect(timeline).toContain('registration.created');
    expect(timeline).toContain('token.issued');
    await page.screenshot({ path: `${SHOTS}/registration.png`, fullPage: true });

    await page.getByRole('button', { name: 'Revoke this registration' }).click();
    await page.getByText('Revoked. Its assertions and tokens no longer work').waitFor();
    await expect(page.getByTestId('state').textContent()).resolves.toBe('revoked_by_operator');
    await expect(page.getByRole('button', { name: 'Revoke this registration' }).count()).resolves.toBe(0);
    await page.screenshot({ path: `${SHOTS}/revoked.png`, fullPage: true });

    expect((await callApi(base, grace.token)).status, 'the revoked agent').toBe(401);
    expect((await callApi(base, linus.token)).status, 'another user\'s agent').toBe(200);
    expect(cspMessages).toEqual([]);
  });

  it('a bulk revocation by provider says how many it will end, then ends exactly those', { timeout: 60_000 }, async () => {
    const { base, acme, others } = await setup(2);
    const acmeAgents = [await agentFor(base, acme, 'a-1', 'ann@example.com'), await agentFor(base, acme, 'a-2', 'bea@example.com')];
    const otherAgent = await agentFor(base, others[0]!, 'o-1', 'cid@example.com');

    await signIn(base, OPERATOR);
    await page.getByRole('heading', { name: 'Registrations' }).waitFor();
    await page.getByRole('link', { name: 'Providers' }).click();
    await page.getByRole('heading', { name: 'Agent providers' }).waitFor();
    await page.screenshot({ path: `${SHOTS}/providers.png`, fullPage: true });
    await page.locator('tr', { hasText: 'Acme Agents' }).getByRole('link', { name: 'Revoke all' }).click();

    await page.getByRole('heading', { name: 'Bulk revoke' }).waitFor();
    await expect(page.getByTestId('bulk-count').textContent()).resolves.toContain('This ends 2 registrations');
    await page.screenshot({ path: `${SHOTS}/bulk-confirm.png`, fullPage: true });
    // Nothing is revoked before the confirmation.
    expect(await Promise.all(acmeAgents.map(async (a) => (await callApi(base, a.token)).status))).toEqual([200, 200]);

    await page.getByRole('button', { name: 'Revoke 2 registrations' }).click();
    await expect(page.getByTestId('bulk-outcome').textContent()).resolves.toContain('Revoked 2 registrations');
    await page.screenshot({ path: `${SHOTS}/bulk-done.png`, fullPage: true });

    expect(await Promise.all(acmeAgents.map(async (a) => (await callApi(base, a.token)).status))).toEqual([401, 401]);
    expect((await callApi(base, otherAgent.token)).status).toBe(200);
    expect(cspMessages).toEqual([]);
  });

  it('refuses a signed-in person who is not an operator, and offers to sign out', { timeout: 60_000 }, async () => {
    const { base } = await setup(1);
    await signIn(base, 'mallory@example.com');
    await page.getByRole('heading', { name: 'Operators only' }).waitFor();
    expect(await page.textContent('main')).toContain('mallory@example.com, which is not an operator of this service');
    await page.screenshot({ path: `${SHOTS}/not-an-operator.png`, fullPage: true });
    for (const path of ['/admin/revoke?by=provider&value=x', '/admin/keys', '/admin/registration?id=reg_x']) {
      const response = await page.goto(`${base}${path}`);
      expect(response?.status(), path).toBe(403);
    }
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${base}/admin`);
    await page.getByLabel('Email').waitFor();
  });

  it('is usable on a phone: nothing scrolls sideways but the tables, inside their own box', { timeout: 60_000 }, async () => {
    const { base, acme } = await setup(1);
    const agent = await agentFor(base, acme, 'p-1', 'a-rather-long-address-for-a-narrow-screen@example.com');
    await page.setViewportSize({ width: 360, height: 740 });
    await signIn(base, OPERATOR);
    await page.getByRole('heading', { name: 'Registrations' }).waitFor();
    await noSidewaysScroll();
    await page.screenshot({ path: `${SHOTS}/phone-registrations.png`, fullPage: true });
    await page.goto(`${base}/admin/registration?id=${agent.id}`);
    await noSidewaysScroll();
    await page.screenshot({ path: `${SHOTS}/phone-registration.png`, fullPage: true });
  });
});
