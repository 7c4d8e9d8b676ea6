import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../packages/service/test/browser/chromium.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';

/**
 * Issue 15, "Also on the pages": the demo's home page as a new user sees it in a real headless
 * Chromium, with the demo provider on (so every section is there), at a phone's width and a
 * desktop's. It is a short intro and sections under headings; no command block makes the page
 * scroll sideways (long lines wrap inside their own box).
 *
 * Artifacts: test-artifacts/demo-home-{360,1280}.png.
 */

const TEST_TIMEOUT = 30_000;
const ACTION_TIMEOUT = 8_000;
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const VIEWPORTS = [
  { width: 360, height: 740 },
  { width: 1280, height: 800 },
] as const;
const SECTIONS = ['Try it in 1 minute', 'Claim it as a human', 'Agent Verified: a provider vouches for the user', 'Documents agents read', 'More'];

let browser: Browser | undefined;
let demo: RunningDemo | undefined;
let dataDir: string | undefined;
let context: BrowserContext | undefined;
let page: Page;
let consoleErrors: string[];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dataDir = mkdtempSync(join(tmpdir(), 'authmd-home-browser-'));
  demo = await startDemo({ port: 0, providerPort: 0, dataDir });
  browser = await launchChromium();
});

afterAll(async () => {
  const results = await Promise.allSettled([browser?.close(), demo?.close()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
});

beforeEach(async () => {
  context = await browser!.newContext({ viewport: VIEWPORTS[1] });
  context.setDefaultTimeout(ACTION_TIMEOUT);
  context.setDefaultNavigationTimeout(ACTION_TIMEOUT);
  page = await context.newPage();
  consoleErrors = [];
  page.on('console', (message) => {
    // The demo serves no favicon: Chromium's own request for it is not the page's error.
    if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
});

afterEach(async () => {
  await context?.close();
  context = undefined;
});

describe('the demo home page', () => {
  it(
    'is a short intro, then sections under headings; at 360 px and 1280 px no command block is wider than the window',
    async () => {
      await page.goto(`${demo!.url}/`);
      await page.getByRole('heading', { level: 1 }).waitFor();

      // Scannable: each section starts with its heading, and the intro before them is short.
      const outline = await page.evaluate(() => ({
        intro: [...document.querySelectorAll('body > p')].map((p) => (p.textContent ?? '').trim()),
        sections: [...document.querySelectorAll('body > section')].map((section) => ({
          heading: section.firstElementChild?.tagName === 'H2' ? (section.firstElementChild.textContent ?? '').trim() : null,
          commands: section.querySelectorAll('code[data-run]').length,
        })),
      }));
      expect(outline.sections.map((s) => s.heading)).toEqual(SECTIONS);
      expect(outline.intro.join(' ').length, 'the intro is a few lines').toBeLessThan(400);
      // Long explanations are collapsed, and the page names where each part is.
      expect(await page.locator('details').count()).toBeGreaterThan(0);
      expect(await page.locator('nav a').allInnerTexts()).toEqual(SECTIONS.slice(0, 4).map((heading) => heading.replace(/:.*/, '')));

      for (const viewport of VIEWPORTS) {
        await page.setViewportSize(viewport);
        const widths = await page.evaluate(() => ({
          page: document.documentElement.scrollWidth,
          window: window.innerWidth,
          blocks: [...document.querySelectorAll('pre')]
            .filter((pre) => pre.getClientRects().length > 0) // inside a closed <details>: not laid out
            .map((pre) => {
              const box = pre.getBoundingClientRect();
              return { id: pre.querySelector('code')?.dataset.run, right: box.right, left: box.left, scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth };
            }),
        }));
        expect(widths.page, `the page scrolls no sideways at ${viewport.width} px`).toBeLessThanOrEqual(widths.window);
        expect(widths.blocks.length).toBeGreaterThan(10);
        for (const block of widths.blocks) {
          expect(block.left, `${block.id} at ${viewport.width} px`).toBeGreaterThanOrEqual(0);
          expect(block.right, `${block.id} at ${viewport.width} px`).toBeLessThanOrEqual(widths.window);
          expect(block.scrollWidth, `${block.id} wraps inside its box at ${viewport.width} px`).toBeLessThanOrEqual(block.clientWidth);
        }
        await page.screenshot({ path: join(ARTIFACTS, `demo-home-${viewport.width}.png`), fullPage: true });
      }

      // Opened, the collapsed parts fit too.
      await page.setViewportSize(VIEWPORTS[0]);
      for (const summary of await page.locator('summary').all()) await summary.click();
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.screenshot({ path: join(ARTIFACTS, 'demo-home-360-open.png'), fullPage: true });
      expect(consoleErrors, 'no errors or CSP violations in the console').toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
