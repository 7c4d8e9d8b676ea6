import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../packages/service/test/browser/chromium.ts';
import { startSmtpReceiver, type ReceivedMessage, type SmtpReceiver } from '../../../packages/service/test/browser/smtp.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';

/**
 * Issue 12, "Done when": the v0.1 claim ceremony (`/agent/auth*`) in a real headless Chromium, with
 * the demo as `npm start` runs it (the development mailbox) and with the demo sending real mail
 * through an SMTP receiver on 127.0.0.1. The agent's part goes over HTTP; the person's part is the
 * browser: they read the code in the mailbox, or open the emailed link, press "Show me a new code"
 * and read that, or press "This was not me".
 *
 * Screenshots of the mailbox and of the link's pages go to `$TMPDIR/authmd-v01-browser/`.
 */

const ACTION_TIMEOUT = 8_000;
// Chromium on a shared two-core machine: generous, but bounded.
const TEST_TIMEOUT = 45_000;
const SHOTS = join(tmpdir(), 'authmd-v01-browser');

type Json = Record<string, any>;

let browser: Browser | undefined;
let smtp: SmtpReceiver | undefined;
let devDemo: RunningDemo | undefined;
let mailDemo: RunningDemo | undefined;
const dataDirs: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const dir = () => {
    const made = mkdtempSync(join(tmpdir(), 'authmd-v01-browser-'));
    dataDirs.push(made);
    return made;
  };
  smtp = await startSmtpReceiver();
  devDemo = await startDemo({ port: 0, dataDir: dir() });
  mailDemo = await startDemo({
    port: 0,
    dataDir: dir(),
    mail: { smtp: { host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, from: 'authmd demo <no-reply@demo.test>' },
  });
  browser = await launchChromium();
});

afterAll(async () => {
  const results = await Promise.allSettled([browser?.close(), devDemo?.close(), mailDemo?.close(), smtp?.close()]);
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
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
    // The demo serves no favicon: Chromium's own request for it is not the page's error.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) pageErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => pageErrors.push(String(error)));
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

// ——— the agent, over HTTP ———

async function post(url: string, body: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Json };
}

async function register(base: string, body: Json): Promise<Json> {
  const answer = await post(`${base}/agent/auth`, body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

const complete = (base: string, claimToken: string, otp: string) => post(`${base}/agent/auth/claim/complete`, { claim_token: claimToken, otp });

async function writeNote(base: string, credential: string, text: string): Promise<number> {
  const response = await fetch(`${base}/api/notes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  await response.arrayBuffer();
  return response.status;
}

// ——— the person, in Chromium ———

async function visible(locator: Locator): Promise<void> {
  await locator.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT });
}

const CODE_LINE = /read this code to your agent: (\d{6})/;
const LINK = /(https?:\/\/\S+\/agent\/auth\/claim\/view\?token=\S+)/;

/** Opens the dev mailbox and reads the latest claim email to `to`: its text, as the page shows it. */
async function readMailbox(base: string, to: string): Promise<{ code: string; link: string; item: Locator }> {
  const opened = await page.goto(`${base}/dev/mailbox`);
  expect(opened?.status()).toBe(200);
  await visible(page.getByRole('heading', { name: 'Development mailbox' }));
  // Newest first: the first message to this person that asks for an agent.
  const item = page.locator('main li').filter({ hasText: `to ${to},` }).filter({ hasText: 'let an agent' }).first();
  await visible(item);
  const text = await item.locator('pre').innerText();
  const code = CODE_LINE.exec(text)?.[1];
  const link = LINK.exec(text)?.[1];
  expect(code, text).toMatch(/^\d{6}$/);
  expect(link, text).toBeDefined();
  return { code: code!, link: link!, item };
}

/** Every message on the page stays inside the card: nothing runs past its right edge (issue 15). */
async function expectInsideTheCard(): Promise<void> {
  const overflow = await page.evaluate(() => {
    const main = document.querySelector('main')!.getBoundingClientRect();
    const pres = [...document.querySelectorAll('main pre')].map((pre) => ({
      scroll: pre.scrollWidth,
      client: pre.clientWidth,
      right: pre.getBoundingClientRect().right,
    }));
    return { mainRight: main.right, pres, page: document.documentElement.scrollWidth, viewport: window.innerWidth };
  });
  expect(overflow.pres.length).toBeGreaterThan(0);
  for (const pre of overflow.pres) {
    expect(pre.scroll, 'the message text fits its box').toBeLessThanOrEqual(pre.client);
    expect(pre.right, 'the message box ends inside the card').toBeLessThanOrEqual(overflow.mainRight);
  }
  expect(overflow.page, 'no horizontal scrolling').toBeLessThanOrEqual(overflow.viewport);
}

/** The one claim email the SMTP receiver got for `to`: its code and link, from the text and the HTML part alike. */
async function receivedClaimEmail(to: string, base: string): Promise<{ message: ReceivedMessage; code: string; link: string }> {
  const message = await smtp!.waitForMessage(to);
  expect(message.subject).toMatch(/let an agent use authmd demo notes: \d{6}$/);
  const code = CODE_LINE.exec(message.text)?.[1];
  const link = LINK.exec(message.text)?.[1];
  expect(code, message.text).toMatch(/^\d{6}$/);
  expect(message.subject.endsWith(code!)).toBe(true);
  expect(new URL(link!).origin, 'the link points at the demo').toBe(base);
  // The HTML part says the same: the code, and the link behind "See who is asking".
  expect(message.html).toContain(`<b>${code}</b>`);
  expect(message.html).toContain(`href="${link}"`);
  return { message, code: code!, link: link! };
}

describe('v0.1: the person claims from the email alone, in Chromium', () => {
  it('dev mailbox: an anonymous API key is claimed with the code read from the mailbox page, and then writes notes', async () => {
    const base = devDemo!.url;
    const email = 'ana@example.com';
    const agent = await register(base, { type: 'anonymous', requested_credential_type: 'api_key' });
    expect(agent).toMatchObject({ registration_type: 'anonymous', credential_type: 'api_key', credential: expect.stringMatching(/^sk_/) });
    expect(agent.claim_token).toEqual(expect.any(String));
    expect(await writeNote(base, agent.credential, 'before the claim'), 'pre-claim, the key only reads').toBe(403);

    const started = await post(`${base}/agent/auth/claim`, { claim_token: agent.claim_token, email });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body).toMatchObject({ registration_id: agent.registration_id, status: 'initiated' });

    // The person opens the mailbox and reads the code in the email to the agent.
    const { code, link } = await readMailbox(base, email);
    expect(new URL(link).origin).toBe(base);
    await page.screenshot({ path: join(SHOTS, 'mailbox.png'), fullPage: true });
    await expectInsideTheCard();
    // The same at a phone's width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, 'mailbox-narrow.png'), fullPage: true });
    await expectInsideTheCard();

    const done = await complete(base, agent.claim_token, code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toEqual({ registration_id: agent.registration_id, status: 'claimed', credential_type: 'api_key', scopes: ['notes.read', 'notes.write'] });
    // Upgraded in place: the key the agent already had now writes.
    expect(await writeNote(base, agent.credential, 'claimed from the mailbox')).toBe(201);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, TEST_TIMEOUT);

  it('real SMTP: the emailed link shows who asks and no code; "Show me a new code" replaces the emailed one; the agent gets its API key', async () => {
    const base = mailDemo!.url;
    const email = 'bo@example.com';
    const agent = await register(base, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: email, requested_credential_type: 'api_key' });
    expect(agent.credential, 'nothing usable before the person answers').toBeUndefined();
    expect(agent.claim_token).toEqual(expect.any(String));
    // With SMTP configured there is no development mailbox: the code only went out by mail.
    expect((await fetch(`${base}/dev/mailbox.json`)).status).toBe(404);

    const emailed = await receivedClaimEmail(email, base);

    // The person clicks the link in the HTML email.
    await page.setContent(emailed.message.html);
    await Promise.all([page.waitForURL((url) => url.href === emailed.link), page.getByRole('link', { name: 'See who is asking, or say no' }).click()]);
    await visible(page.getByRole('heading', { name: 'An agent asks to act for you' }));
    const shown = await page.locator('main').innerText();
    expect(shown).toContain(`as ${email}`);
    expect(shown).toContain('that gave your email address');
    expect(shown).toContain('notes.write');
    expect(shown, 'opening the link reveals no code').not.toMatch(/(?<!\d)\d{6}(?!\d)/);
    await page.screenshot({ path: join(SHOTS, 'link-page.png'), fullPage: true });

    await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST' && response.status() === 200), page.getByRole('button', { name: 'Show me a new code' }).click()]);
    await visible(page.getByRole('heading', { name: 'Read this code to your agent' }));
    const code = (await page.getByTestId('page-code').innerText()).trim();
    expect(code).toMatch(/^\d{6}$/);
    await page.screenshot({ path: join(SHOTS, 'new-code.png'), fullPage: true });

    if (code !== emailed.code) {
      // The new code replaced the emailed one.
      const stale = await complete(base, agent.claim_token, emailed.code);
      expect(stale.status, JSON.stringify(stale.body)).toBe(401);
      expect(stale.body.error).toBe('otp_invalid');
    }
    const done = await complete(base, agent.claim_token, code);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({ registration_id: agent.registration_id, status: 'claimed', credential_type: 'api_key', credential: expect.stringMatching(/^sk_/) });
    expect(done.body.credential_expires).toBeNull();
    expect(await writeNote(base, done.body.credential, 'claimed through a real email')).toBe(201);
    // One email only: revealing a code sends nothing.
    expect(smtp!.messages.filter((m) => m.to.includes(email))).toHaveLength(1);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, TEST_TIMEOUT);

  it('"This was not me" on the link page: the agent is told claim_denied, and its key still cannot write', async () => {
    const base = devDemo!.url;
    const email = 'cy@example.com';
    const agent = await register(base, { type: 'anonymous', requested_credential_type: 'api_key' });
    expect((await post(`${base}/agent/auth/claim`, { claim_token: agent.claim_token, email })).status).toBe(200);

    const { code, link } = await readMailbox(base, email);
    await page.goto(link);
    await visible(page.getByRole('heading', { name: 'An agent asks to act for you' }));
    expect(await page.locator('main').innerText()).toContain('that signed up on its own');
    await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST' && response.status() === 200), page.getByRole('button', { name: 'This was not me' }).click()]);
    await visible(page.getByRole('heading', { name: 'Denied' }));
    expect(await page.locator('main').innerText()).toContain('The agent was told no.');

    // Even the emailed code is refused now.
    const refused = await complete(base, agent.claim_token, code);
    expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    expect(refused.body.error).toBe('claim_denied');
    expect(await writeNote(base, agent.credential, 'after a no')).toBe(403);
    expect(pageErrors, pageErrors.join('\n')).toEqual([]);
  }, TEST_TIMEOUT);
});
