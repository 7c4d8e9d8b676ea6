import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { postJson, startService, type HarnessOptions, type RunningService } from '../support/harness.ts';
import { launchChromium, openPage } from './chromium.ts';

/**
 * Issue 15, "Also on the pages": the service's pages as a new user sees them in a real headless
 * Chromium, at a phone's width and a desktop's. The claim page has exactly one primary (filled)
 * button in every state (both directions, each alone, after a wrong code), and the development
 * mailbox keeps a message with a 300-character unbroken URL inside its card: nothing scrolls sideways.
 *
 * Artifacts: test-artifacts/pages-claim-both-{360,1280}.png, pages-claim-{read-back,type-in}-only-{360,1280}.png, pages-claim-wrong-code-360.png,
 * pages-mailbox-{360,1280}.png.
 */

const TEST_TIMEOUT = 30_000;
const ACTION_TIMEOUT = 8_000;
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const VIEWPORTS = [
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
] as const;
/** A URL with no break opportunity for 300 characters; the sign-in email names the service by it. */
const LONG_URL = `https://docs.example.com/${'a'.repeat(300 - 'https://docs.example.com/'.length)}`;

let browser: Browser | undefined;
const services: RunningService[] = [];
let context: BrowserContext | undefined;
let page: Page;
let cspMessages: string[];

async function service(options: HarnessOptions = {}): Promise<RunningService> {
  const running = await startService(options);
  services.push(running);
  return running;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  const results = await Promise.allSettled([browser?.close(), ...services.map((s) => s.close())]);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

beforeEach(async () => {
  ({ context, page, cspMessages } = await openPage(browser!, VIEWPORTS[1]!, ACTION_TIMEOUT));
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

/** A service_auth registration for `email`: its claim link (the agent has a code of its own when v0.7 is on). */
async function claimLink(running: RunningService, email: string): Promise<string> {
  const response = await postJson(`${running.base}/agent/identity`, { type: 'service_auth', login_hint: email });
  expect(response.status).toBe(200);
  const { claim } = await response.json();
  // v0.7's shape (the current dialect off) names the link on the claim itself.
  return claim.attempt?.verification_uri ?? claim.verification_uri;
}

/** The newest sign-in code mailed to `email`, from the development mailbox's JSON. */
async function mailedCode(running: RunningService, email: string): Promise<string> {
  const { messages } = await (await fetch(`${running.base}/dev/mailbox.json`)).json();
  const message = (messages as { to: string; text: string }[]).find((m) => m.to === email);
  const code = /\b(\d{6})\b/.exec(message?.text ?? '')?.[1];
  expect(code, `a sign-in code for ${email} in the mailbox`).toBeDefined();
  return code!;
}

/** Opens the claim link signed out, signs in with the mailed code, and lands on the claim page. */
async function openClaimPage(running: RunningService, link: string, email: string): Promise<void> {
  await page.goto(link);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send me a code' }).click();
  await page.getByRole('heading', { name: 'Check your email' }).waitFor();
  await page.getByLabel('Code').fill(await mailedCode(running, email));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Authorize this agent?' }).waitFor();
}

interface ButtonLook {
  text: string;
  background: string;
  filled: boolean;
}

/**
 * The page's visible buttons and whether each is filled: layout.ts draws the primary action as a
 * button with a solid colour, and every other one (`.secondary`, `.link`) on white or nothing.
 */
async function visibleButtons(): Promise<ButtonLook[]> {
  return page.locator('button').evaluateAll((buttons) =>
    buttons
      .filter((b) => {
        const box = b.getBoundingClientRect();
        const style = getComputedStyle(b);
        return box.width > 0 && box.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
      })
      .map((b) => {
        const background = getComputedStyle(b).backgroundColor;
        const channels = (background.match(/[\d.]+/g) ?? []).map(Number);
        const transparent = channels.length === 4 && channels[3] === 0;
        const white = channels[0] === 255 && channels[1] === 255 && channels[2] === 255;
        return { text: (b.textContent ?? '').trim(), background, filled: !transparent && !white };
      }),
  );
}

async function expectOnePrimary(primary: string, others: string[]): Promise<void> {
  const buttons = await visibleButtons();
  expect(buttons.map((b) => b.text).sort(), 'the buttons on the page').toEqual([primary, ...others].sort());
  expect(buttons.filter((b) => b.filled).map((b) => b.text), `exactly one primary button: ${JSON.stringify(buttons)}`).toEqual([primary]);
}

/** Nothing on the page is wider than the window: no sideways scrolling. */
async function expectNoSidewaysScroll(what: string): Promise<void> {
  const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
  expect(widths.scroll, `${what}: the page is no wider than the window`).toBeLessThanOrEqual(widths.inner);
}

async function shoot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

describe('the claim page has one primary action in each state', () => {
  it(
    'both directions: "Authorize with this code" is the one filled button; the read-back is the labelled alternative; Deny is secondary',
    async () => {
      const running = await service();
      await openClaimPage(running, await claimLink(running, 'ada@example.com'), 'ada@example.com');
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        await expectOnePrimary('Authorize with this code', ['Authorize and show me a code', 'Deny']);
        await expectNoSidewaysScroll(`claim page at ${viewport.width} px`);
        // The other path says what it is, next to its button.
        expect(await page.locator('main').innerText()).toMatch(/No code from your agent\?/);
        await shoot(`pages-claim-both-${viewport.width}`);
      }

      // After a wrong code, the page is the same form with the error on top: still one primary.
      await page.getByLabel('Does your agent show you a six-digit code?').fill('000000');
      await page.getByRole('button', { name: 'Authorize with this code' }).click();
      await page.locator('p.error').waitFor();
      await page.setViewportSize(VIEWPORTS[0]);
      await expectOnePrimary('Authorize with this code', ['Authorize and show me a code', 'Deny']);
      await shoot('pages-claim-wrong-code-360');
      expect(cspMessages, 'no Content-Security-Policy violations').toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'read-back only (the agent has no code of its own): "Authorize" is primary, Deny secondary',
    async () => {
      const running = await service({ dialects: { 'v0.7': false } });
      await openClaimPage(running, await claimLink(running, 'grace@example.com'), 'grace@example.com');
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        await expectOnePrimary('Authorize', ['Deny']);
        await expectNoSidewaysScroll(`read-back claim page at ${viewport.width} px`);
        await shoot(`pages-claim-read-back-only-${viewport.width}`);
      }
      expect(cspMessages).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'type-in only (no read-back dialect): "Authorize with this code" is primary, Deny secondary',
    async () => {
      const running = await service({ dialects: { current: false } });
      await openClaimPage(running, await claimLink(running, 'linus@example.com'), 'linus@example.com');
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        await expectOnePrimary('Authorize with this code', ['Deny']);
        await expectNoSidewaysScroll(`type-in claim page at ${viewport.width} px`);
        await shoot(`pages-claim-type-in-only-${viewport.width}`);
      }
      expect(cspMessages).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

describe('the development mailbox', () => {
  it(
    'wraps a message with a 300-character unbroken URL inside its card, at 360 px and at 1280 px',
    async () => {
      // The sign-in email names the service, here by a URL that has no place to break for 300 characters.
      const running = await service({ name: LONG_URL });
      await page.goto(`${running.base}/login`);
      await page.getByLabel('Email').fill('ada@example.com');
      await page.getByRole('button', { name: 'Send me a code' }).click();
      await page.getByRole('heading', { name: 'Check your email' }).waitFor();

      await page.goto(`${running.base}/dev/mailbox`);
      await page.getByRole('heading', { name: 'Development mailbox' }).waitFor();
      expect(await page.locator('pre').first().innerText()).toContain(LONG_URL);
      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        await expectNoSidewaysScroll(`mailbox at ${viewport.width} px`);
        const fit = await page.evaluate(() => {
          const card = document.querySelector('main')!.getBoundingClientRect();
          return [...document.querySelectorAll('main pre, main li p, .brand span')].map((element) => {
            const box = element.getBoundingClientRect();
            return {
              tag: element.tagName,
              scrollWidth: element.scrollWidth,
              clientWidth: element.clientWidth,
              insideCard: box.left >= card.left - 0.5 && box.right <= card.right + 0.5,
            };
          });
        });
        const pre = fit.filter((f) => f.tag === 'PRE');
        expect(pre.length).toBeGreaterThan(0);
        for (const element of pre) expect(element.scrollWidth, `the message text fits its box at ${viewport.width} px`).toBeLessThanOrEqual(element.clientWidth);
        for (const element of fit) expect(element, `inside the card at ${viewport.width} px`).toMatchObject({ insideCard: true });
        await shoot(`pages-mailbox-${viewport.width}`);
      }
      expect(cspMessages).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
