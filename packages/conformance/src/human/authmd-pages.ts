import { Browser, parseForms, signInCodeIn, unescapeHtml, type Fetcher, type MailboxMessage, type Page } from './browser.ts';
import type { HumanDriver } from './driver.ts';

/**
 * The person, played over HTTP on authmd's OWN pages, exactly as someone at a browser would: open the
 * claim link, sign in when the service asks (email → the six-digit code mailed to it, read from the
 * development mailbox → session cookie), then press Authorize, type the agent's code, or press Deny.
 * It only sends what the pages give out (cookies, hidden form fields), through `Browser`.
 *
 * One signed-in `Browser` is kept per email, and each email signs in once: sign-in codes are rate
 * limited per address and per IP, so a run of many ceremonies must not sign in for each of them.
 *
 * It needs `/dev/mailbox.json` (authmd with no SMTP configured, as the demo runs); for any other
 * service the person is real: `ManualHuman`.
 *
 * Besides the `HumanDriver` methods, the steps are public (`openClaim`, then `authorizeOn`,
 * `typeInOn` or `denyOn`) for tests that look at the claim page before answering it.
 */

export interface AuthmdPagesOptions {
  /** Called once per sign-in with the code read from the mailbox, before it is typed in. */
  onSignIn?(email: string, code: string): void | Promise<void>;
}

export class AuthmdPagesHuman implements HumanDriver {
  readonly name = 'authmd pages';
  /** The service's base URL, without a trailing slash. */
  readonly base: string;
  private readonly origin: string;
  private readonly browsers = new Map<string, Browser>();
  /** Per email, its one sign-in: running, done, or failed (a failure is not retried, to spare the rate limits). */
  private readonly signIns = new Map<string, Promise<void>>();
  /**
   * Per email, the last `openClaim` (settled): one person opens one link at a time, so two ceremonies
   * at once neither sign in twice nor race for the CSRF cookie of their shared browser.
   */
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(
    base: string,
    private readonly fetcher: Fetcher = (url, init) => fetch(url, init),
    private readonly options: AuthmdPagesOptions = {},
  ) {
    this.base = base.replace(/\/+$/, '');
    this.origin = new URL(this.base).origin;
  }

  /** The browser of the person signed in (or about to sign in) as `email`; one per address. */
  browserFor(email: string): Browser {
    const key = emailKey(email);
    let browser = this.browsers.get(key);
    if (!browser) {
      browser = new Browser(this.base, {}, this.fetcher);
      this.browsers.set(key, browser);
    }
    return browser;
  }

  async readBack(verificationUri: string, email: string): Promise<string> {
    return this.authorizeOn(await this.openClaim(verificationUri, email), email);
  }

  async typeIn(verificationUri: string, email: string, userCode: string): Promise<void> {
    await this.typeInOn(await this.openClaim(verificationUri, email), email, userCode);
  }

  async deny(verificationUri: string, email: string): Promise<void> {
    await this.denyOn(await this.openClaim(verificationUri, email), email);
  }

  /** Forgets every browser (and so every session). */
  close(): void {
    this.browsers.clear();
    this.signIns.clear();
    this.turns.clear();
  }

  /**
   * Opens the claim link as `email` (following same-site redirects), signing in first when it leads to
   * the sign-in page. Resolves to the claim page; throws when the link leads anywhere else.
   */
  async openClaim(verificationUri: string, email: string): Promise<Page> {
    let link: URL;
    try {
      link = new URL(verificationUri);
    } catch {
      throw new Error(`the claim link is not a URL: ${JSON.stringify(verificationUri)}; expected an absolute link to the service's claim page`);
    }
    if (link.origin !== this.origin) {
      throw new Error(`the claim link ${verificationUri} is not on ${this.origin}; expected a link to the claim page of the service under test`);
    }
    return this.inTurn(email, () => this.openAsSignedIn(link, email));
  }

  private async openAsSignedIn(link: URL, email: string): Promise<Page> {
    const verificationUri = link.toString();
    const browser = this.browserFor(email);
    let page = await browser.open(verificationUri);
    if (isSignInPage(page)) {
      const key = emailKey(email);
      const earlier = this.signIns.get(key);
      if (earlier) {
        await earlier; // a sign-in that failed fails this ceremony too, without asking for another code
        throw new Error(`already signed in as ${email}, yet the claim link ${verificationUri} leads to the sign-in page again (${seen(page)}); expected the session to hold and the link to open the claim page`);
      } else {
        const signIn = this.signIn(browser, email, page);
        const done = signIn.then(() => undefined);
        done.catch(() => undefined); // the failure is this call's to report; later calls get it from `earlier`
        this.signIns.set(key, done);
        page = await signIn;
      }
    }
    if (page.status !== 200 || !claimForms.some((action) => formOf(page.html, action))) {
      throw new Error(`the claim link ${verificationUri} did not open a claim page: ${seen(page)}; expected a page with Authorize and Deny forms`);
    }
    return page;
  }

  /** Read-back: presses Authorize on the claim page; resolves to the 6-digit code the page then shows. */
  async authorizeOn(claimPage: Page | string, email: string): Promise<string> {
    if (!formOf(htmlOf(claimPage), '/claim/authorize')) {
      throw new Error(`the claim page has no Authorize form: ${seen(claimPage)}; expected a form posting to /claim/authorize`);
    }
    const shown = await this.browserFor(email).submit(claimPage, '/claim/authorize');
    const code = pageCode(shown.html);
    if (shown.status !== 200 || !code) {
      throw new Error(`after Authorize, the page shows no code: ${seen(shown)}; expected HTTP 200 and a 6-digit code (data-testid="page-code")`);
    }
    return code;
  }

  /** Type-in: types the agent's code into the claim page; the page must then say "Agent linked". */
  async typeInOn(claimPage: Page | string, email: string, userCode: string): Promise<void> {
    if (!formOf(htmlOf(claimPage), '/claim/code')) {
      throw new Error(`the claim page has no form to type the agent's code in: ${seen(claimPage)}; expected a form posting to /claim/code`);
    }
    const linked = await this.browserFor(email).submit(claimPage, '/claim/code', { code: userCode });
    if (linked.status !== 200 || !linked.html.includes('Agent linked')) {
      throw new Error(`the page did not take the agent's code ${userCode}: ${seen(linked)}; expected HTTP 200 and "Agent linked"`);
    }
  }

  /** Presses Deny on the claim page; the page must then say "Denied". */
  async denyOn(claimPage: Page | string, email: string): Promise<void> {
    if (!formOf(htmlOf(claimPage), '/claim/deny')) {
      throw new Error(`the claim page has no Deny form: ${seen(claimPage)}; expected a form posting to /claim/deny`);
    }
    const denied = await this.browserFor(email).submit(claimPage, '/claim/deny');
    if (denied.status !== 200 || !denied.html.includes('Denied')) {
      throw new Error(`after Deny: ${seen(denied)}; expected HTTP 200 and "Denied"`);
    }
  }

  private inTurn<T>(email: string, step: () => Promise<T>): Promise<T> {
    const key = emailKey(email);
    const run = (this.turns.get(key) ?? Promise.resolve()).then(step, step);
    this.turns.set(key, run.catch(() => undefined));
    return run;
  }

  /** From the sign-in page the claim link led to: email → mailed code → back where the link pointed. */
  private async signIn(browser: Browser, email: string, signInPage: Page): Promise<Page> {
    if (!formOf(signInPage.html, '/login')) {
      throw new Error(`the sign-in page has no email form: ${seen(signInPage)}; expected a form posting to /login`);
    }
    const codeForm = await browser.submit(signInPage, '/login', { email });
    if (codeForm.status !== 200 || !formOf(codeForm.html, '/login/code')) {
      throw new Error(`signing in as ${email}, after sending the email address: ${seen(codeForm)}; expected HTTP 200 and a form for the mailed code (posting to /login/code)`);
    }
    const code = await this.mailedCode(email);
    await this.options.onSignIn?.(email, code);
    const signedIn = await browser.submit(codeForm, '/login/code', { code });
    if (signedIn.status !== 303 || !signedIn.location) {
      throw new Error(`signing in as ${email} with the mailed code ${code}: ${seen(signedIn)}; expected a 303 redirect back to the claim link`);
    }
    return browser.open(new URL(signedIn.location, signedIn.url).toString());
  }

  /** The newest sign-in code mailed to `email`, from the development mailbox. */
  private async mailedCode(email: string): Promise<string> {
    const messages = await this.mailbox(`signing in as ${email} needs the code mailed to that address`);
    const code = signInCodeIn(messages, email);
    if (!code) {
      throw new Error(`no sign-in code for ${email} in the development mailbox (${messages.length} messages); expected the newest message to that address to carry a 6-digit code`);
    }
    return code;
  }

  /**
   * v0.1: the code of the newest message to `email` in the development mailbox, the claim email the
   * service just sent ("read this code to your agent: 123456"). An email that carries only its link
   * (as the published v0.1 sample's does) is followed as a person would: open the link's page and press
   * its button ("Show me a new code"), which shows the code.
   */
  async emailedCode(email: string): Promise<string> {
    const deadline = Date.now() + EMAIL_WAIT_MS;
    let message: MailboxMessage | undefined;
    for (;;) {
      const messages = await this.mailbox(`reading the claim email to ${email}`);
      message = messages.find((m) => emailKey(m.to) === emailKey(email));
      if (message || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!message) throw new Error(`no email to ${email} in the development mailbox within ${EMAIL_WAIT_MS / 1000} s; expected the claim email the service sends when the agent asks`);
    const code = claimCodeIn(message);
    if (code) return code;
    const link = claimLinkIn(message.text, this.origin);
    if (!link) {
      throw new Error(`the email to ${email} ("${excerpt(message.subject, 120)}") carries neither a 6-digit code nor a link to ${this.origin}: "${excerpt(message.text)}"`);
    }
    const browser = this.browserFor(email);
    const page = await browser.open(link);
    const form = parseForms(page.html).find((f) => f.method === 'post');
    if (page.status !== 200 || !form) throw new Error(`the claim email's link ${link} did not open a page with a button to show the code: ${seen(page)}`);
    const shown = await browser.submit(page, form.action);
    const revealed = pageCode(shown.html) ?? /\b(\d{6})\b/.exec(visibleText(shown.html))?.[1];
    if (shown.status !== 200 || !revealed) throw new Error(`after pressing "${form.buttons[0] ?? 'the button'}" on ${link}, the page shows no code: ${seen(shown)}`);
    return revealed;
  }

  /** Every message of the development mailbox, newest first; `why` says what needed it (for the error). */
  private async mailbox(why: string): Promise<MailboxMessage[]> {
    const url = `${this.base}/dev/mailbox.json`;
    const response = await this.fetcher(url, { redirect: 'manual' });
    const text = await response.text();
    if (response.status === 404) {
      throw new Error(`${why}, but ${url} answered 404: this driver needs the development mailbox of authmd's demo; for another service use \`--human manual\``);
    }
    let messages: unknown;
    try {
      messages = (JSON.parse(text) as { messages?: unknown }).messages;
    } catch {
      messages = undefined;
    }
    if (response.status !== 200 || !Array.isArray(messages)) {
      throw new Error(`the development mailbox ${url} answered HTTP ${response.status} ${excerpt(text)}; expected 200 and {"messages":[…]}`);
    }
    return messages as MailboxMessage[];
  }
}

/** How long the driver waits for a claim email to reach the development mailbox. */
const EMAIL_WAIT_MS = 3_000;

/** The code a v0.1 claim email asks the person to read to the agent (its text, else its subject). */
export function claimCodeIn(message: MailboxMessage): string | undefined {
  return /read this code to your agent:\s*(\d{6})\b/i.exec(message.text)?.[1] ?? /\b(\d{6})\b/.exec(message.subject)?.[1];
}

/** The first link of an email's text to `origin`. */
function claimLinkIn(text: string, origin: string): string | undefined {
  return [...text.matchAll(/https?:\/\/[^\s"'<>]+/g)].map((match) => match[0]).find((url) => URL.canParse(url) && new URL(url).origin === origin);
}

/** The 6-digit code a claim page shows after Authorize (`data-testid="page-code"`), if any. */
export function pageCode(html: string): string | undefined {
  return /data-testid="page-code">\s*(\d{6})\s*</.exec(html)?.[1];
}

/**
 * What a person would have seen: the status (and where a redirect went) and the start of the page's
 * visible text, for error messages.
 */
export function seen(page: Page | string): string {
  if (typeof page === 'string') return `the page says "${excerpt(visibleText(page))}"`;
  if (page.status >= 300 && page.status < 400) return `HTTP ${page.status} redirecting to ${page.location ?? '(no Location)'}`;
  const text = visibleText(page.html);
  return `HTTP ${page.status}, ${text ? `the page says "${excerpt(text)}"` : 'an empty page'}`;
}

const claimForms = ['/claim/authorize', '/claim/code', '/claim/deny'];

function formOf(html: string, action: string): boolean {
  return parseForms(html).some((form) => form.action === action || form.action.endsWith(action));
}

function htmlOf(page: Page | string): string {
  return typeof page === 'string' ? page : page.html;
}

/** The page the claim link led to is the sign-in form (authmd redirects there, `return_to` the link). */
function isSignInPage(page: Page): boolean {
  return page.status === 200 && new URL(page.url).pathname.endsWith('/login');
}

function emailKey(email: string): string {
  return email.trim().toLowerCase();
}

function visibleText(html: string): string {
  const withoutHead = html.replace(/<(head|style|script)\b[\s\S]*?<\/\1>/gi, ' ');
  return unescapeHtml(withoutHead.replace(/<[^>]*>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}

function excerpt(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
