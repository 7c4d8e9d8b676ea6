/**
 * The person at a browser, over fetch (as .tmp/client-smoke.ts and the demo's tests do): a cookie
 * jar, redirects followed one hop at a time, hidden form fields. Signs in with the code from the
 * demo's development mailbox, then answers the claim page: Authorize (read-back), type the agent's
 * code (type-in), or Deny.
 */
export class Human {
  private readonly jar = new Map<string, string>();

  constructor(
    readonly base: string,
    readonly email: string,
  ) {}

  /** Opens the claim link, signing in first. Returns the claim page's HTML. */
  async openClaimLink(link: string): Promise<string> {
    if (new URL(link).origin !== this.base) throw new Error(`the link ${link} does not point at ${this.base}`);
    let page = await this.visit(link);
    if (page.status === 303 && new URL(page.location!, this.base).pathname === '/login') {
      const emailForm = await this.visit(page.location!);
      const codeForm = await this.submit(emailForm.html, '/login', { email: this.email });
      const signedIn = await this.submit(codeForm.html, '/login/code', { code: await this.codeFromMailbox() });
      if (signedIn.status !== 303) throw new Error(`sign-in failed (${signedIn.status}): ${signedIn.html}`);
      page = await this.visit(signedIn.location!);
    }
    if (page.status !== 200 || !page.html.includes('Authorize')) throw new Error(`no claim page (${page.status}): ${page.html}`);
    return page.html;
  }

  /** Read-back: presses Authorize; returns the code the page shows. */
  async authorize(claimPage: string): Promise<string> {
    const shown = await this.submit(claimPage, '/claim/authorize', {});
    const code = /data-testid="page-code">(\d{6})</.exec(shown.html)?.[1];
    if (!code) throw new Error(`no page code (${shown.status}): ${shown.html}`);
    return code;
  }

  /** Type-in: enters the agent's code on the page. */
  async typeAgentCode(claimPage: string, code: string): Promise<void> {
    const linked = await this.submit(claimPage, '/claim/code', { code });
    if (linked.status !== 200 || !linked.html.includes('Agent linked')) throw new Error(`code not accepted (${linked.status}): ${linked.html}`);
  }

  async deny(claimPage: string): Promise<void> {
    const denied = await this.submit(claimPage, '/claim/deny', {});
    if (denied.status !== 200 || !denied.html.includes('Denied')) throw new Error(`deny failed (${denied.status}): ${denied.html}`);
  }

  private async codeFromMailbox(): Promise<string> {
    const { messages } = (await (await fetch(`${this.base}/dev/mailbox.json`)).json()) as { messages: { to: string; subject: string }[] };
    const code = /\b(\d{6})\b/.exec(messages.find((message) => message.to === this.email)?.subject ?? '')?.[1];
    if (!code) throw new Error(`no sign-in code for ${this.email} in the mailbox`);
    return code;
  }

  private async submit(html: string, action: string, inputs: Record<string, string>): Promise<Page> {
    const form = [...html.matchAll(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/g)].find((match) => match[1] === action);
    if (!form) throw new Error(`no form posting to ${action} in:\n${html}`);
    const fields: Record<string, string> = {};
    for (const input of form[2]!.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[input[1]!] = unescapeHtml(input[2]!);
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
      if (attributes.some((attribute) => attribute.trim().toLowerCase() === 'max-age=0')) this.jar.delete(pair!.slice(0, eq));
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

const unescapeHtml = (text: string) =>
  text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
