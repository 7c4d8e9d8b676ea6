import { expect } from 'vitest';
import { READ_BACK_BUTTON, TYPE_IN_BUTTON } from '../src/claim-walkthrough.ts';

/**
 * A person at a browser, over fetch: a cookie jar, redirects followed one hop at a time, and only
 * what the pages hand out (cookies, hidden form fields). Signs in with the code from the development
 * mailbox, then answers claim pages: Authorize, type the agent's code, or Deny.
 */
export class Human {
  private readonly jar = new Map<string, string>();

  constructor(
    readonly base: string,
    readonly email: string,
  ) {}

  /** Opens a claim link; signs in first when the service asks for it. Returns the claim page's HTML. */
  async openClaimLink(link: string): Promise<string> {
    expect(new URL(link).origin, 'the link points at the demo').toBe(this.base);
    let page = await this.visit(link);
    if (page.status === 303 && new URL(page.location!, this.base).pathname === '/login') {
      const emailForm = await this.visit(page.location!);
      expect(emailForm.status).toBe(200);
      const codeForm = await this.submit(emailForm.html, '/login', { email: this.email });
      expect(codeForm.status, codeForm.html).toBe(200);
      const signedIn = await this.submit(codeForm.html, '/login/code', { code: await this.codeFromMailbox() });
      expect(signedIn.status, signedIn.html).toBe(303);
      page = await this.visit(signedIn.location!);
    }
    expect(page.status, page.html).toBe(200);
    expect(page.html).toContain('Authorize this agent?');
    return page.html;
  }

  /** Read-back: presses the Authorize button the walkthroughs name, and returns the code the page shows. */
  async authorize(claimPage: string): Promise<string> {
    expect(claimPage).toContain(`>${READ_BACK_BUTTON}</button>`);
    const shown = await this.submit(claimPage, '/claim/authorize', {});
    expect(shown.status, shown.html).toBe(200);
    const code = /data-testid="page-code">(\d{6})</.exec(shown.html)?.[1];
    expect(code, 'the page shows a six-digit code').toBeDefined();
    return code!;
  }

  /** Type-in: enters the agent's code on the claim page. */
  async typeAgentCode(claimPage: string, code: string): Promise<void> {
    expect(claimPage).toContain(`>${TYPE_IN_BUTTON}</button>`);
    const linked = await this.submit(claimPage, '/claim/code', { code });
    expect(linked.status, linked.html).toBe(200);
    expect(linked.html).toContain('Agent linked');
  }

  /** The newest sign-in code mailed to this human: from the mailbox's JSON, and shown on its page too. */
  private async codeFromMailbox(): Promise<string> {
    const { messages } = (await (await fetch(`${this.base}/dev/mailbox.json`)).json()) as { messages: { to: string; subject: string }[] };
    const code = /\b(\d{6})\b/.exec(messages.find((m) => m.to === this.email)?.subject ?? '')?.[1];
    expect(code, `a sign-in code for ${this.email} in the mailbox`).toBeDefined();
    const page = await fetch(`${this.base}/dev/mailbox`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(code);
    return code!;
  }

  /** Submits the form of `html` that posts to `action`, with its hidden fields and the given inputs. */
  private async submit(html: string, action: string, inputs: Record<string, string>): Promise<Page> {
    const form = [...html.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)].find((m) => m[1] === action);
    expect(form, `a form posting to ${action}`).toBeDefined();
    const fields: Record<string, string> = {};
    for (const input of form![2]!.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[input[1]!] = unescape(input[2]!);
    return this.visit(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, ...inputs }).toString(),
    });
  }

  private async visit(target: string, init: RequestInit = {}): Promise<Page> {
    const cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const headers = { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) };
    const response = await fetch(new URL(target, this.base), { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const gone = attributes.some((a) => a.trim().toLowerCase() === 'max-age=0');
      if (gone) this.jar.delete(pair!.slice(0, eq));
      else this.jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    return { status: response.status, location: response.headers.get('location'), html: await response.text() };
  }
}

interface Page {
  status: number;
  location: string | null;
  html: string;
}

const unescape = (text: string) =>
  text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
