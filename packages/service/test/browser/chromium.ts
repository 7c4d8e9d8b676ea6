import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium (`apt-get install chromium`, as .ci/run does when it is missing), driven by
 * playwright-core: nothing is downloaded by Playwright. The machine may have no internet, so every
 * background service is off and host names other than 127.0.0.1 resolve to nothing (a page that
 * sends the browser to another site shows up as a request, never as a DNS query).
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`${CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, timeout: 20_000, args: CHROMIUM_ARGS });
}

/** A fresh context and page with these timeouts, and the Content-Security-Policy complaints the page logs. */
export async function openPage(browser: Browser, viewport: { width: number; height: number }, timeoutMs: number): Promise<{ context: BrowserContext; page: Page; cspMessages: string[] }> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(timeoutMs);
  context.setDefaultNavigationTimeout(timeoutMs);
  const page = await context.newPage();
  const cspMessages: string[] = [];
  page.on('console', (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) cspMessages.push(message.text());
  });
  return { context, page, cspMessages };
}
