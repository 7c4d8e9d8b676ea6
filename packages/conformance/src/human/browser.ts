/**
 * A small "browser over fetch" for the service's human pages: a cookie jar, no automatic redirects
 * (every hop is visible to the test), HTML form parsing and the built-in email sign-in.
 *
 * It is deliberately dumb, like a real browser: it only sends what the pages gave it (cookies and
 * hidden form fields), so a test that passes here passes for a person clicking through the pages.
 *
 * It lives in the conformance package because the suite's `authmd pages` human drives the same pages
 * with it; the service's and the client's tests import it from here. No test framework in here.
 */

/** How a request is sent: `fetch`, or a function straight into a service's Web handler. */
export type Fetcher = (url: string, init: RequestInit) => Promise<Response>;

export interface Cookie {
  name: string;
  value: string;
  /** Every attribute of the Set-Cookie line that set it, lowercased names (`httponly`, `samesite`, …). */
  attributes: Record<string, string | true>;
  /** The raw Set-Cookie line. */
  raw: string;
}

export interface Form {
  action: string;
  method: string;
  /** Every named input with its value (hidden fields, and the empty visible ones). */
  fields: Record<string, string>;
  /** The button labels inside the form. */
  buttons: string[];
}

export interface Page {
  response: Response;
  /** The address this page was requested from (after `open`, the last hop). */
  url: string;
  status: number;
  html: string;
  location: string | null;
}

/** Decodes the entities `escapeHtml` produces (and the usual named ones). */
export function unescapeHtml(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCharCode(parseInt(code, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}="([^"]*)"`, 'i').exec(tag);
  return match ? unescapeHtml(match[1]!) : undefined;
}

/** Every `<form>` of a page, with its named inputs and buttons. */
export function parseForms(html: string): Form[] {
  const forms: Form[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = match[1]!;
    const inner = match[2]!;
    const fields: Record<string, string> = {};
    for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input[0], 'name');
      if (name !== undefined) fields[name] = attribute(input[0], 'value') ?? '';
    }
    const buttons = [...inner.matchAll(/<button\b[^>]*>([\s\S]*?)<\/button>/gi)].map((b) => unescapeHtml(b[1]!.trim()));
    forms.push({ action: attribute(` ${open}`, 'action') ?? '', method: (attribute(` ${open}`, 'method') ?? 'get').toLowerCase(), fields, buttons });
  }
  return forms;
}

/** The value of the first input named `name` on the page ('' when there is none). */
export function field(html: string, name: string): string {
  for (const form of parseForms(html)) if (name in form.fields) return form.fields[name]!;
  return '';
}

export class Browser {
  readonly cookies = new Map<string, Cookie>();
  /** Every Set-Cookie line received, in order. */
  readonly setCookieLog: string[] = [];

  constructor(
    readonly base: string,
    /** Headers sent on every request (e.g. a host application's own user header). */
    readonly headers: Record<string, string> = {},
    /** How requests are sent: the network by default, or straight into a service's Web handler. */
    private readonly fetcher: Fetcher = (url, init) => fetch(url, init),
  ) {}

  url(pathOrUrl: string): string {
    return /^https?:\/\//.test(pathOrUrl) ? pathOrUrl : new URL(pathOrUrl, this.base).toString();
  }

  cookieHeader(): string {
    return [...this.cookies.values()].map((c) => `${c.name}=${c.value}`).join('; ');
  }

  cookie(name: string): Cookie | undefined {
    return this.cookies.get(name);
  }

  async request(pathOrUrl: string, init: RequestInit = {}): Promise<Page> {
    const headers: Record<string, string> = { ...this.headers, ...(init.headers as Record<string, string> | undefined) };
    const jar = this.cookieHeader();
    if (jar && headers.cookie === undefined) headers.cookie = jar;
    const url = this.url(pathOrUrl);
    const response = await this.fetcher(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) this.store(line);
    return { response, url, status: response.status, html: await response.text(), location: response.headers.get('location') };
  }

  get(pathOrUrl: string, headers: Record<string, string> = {}): Promise<Page> {
    return this.request(pathOrUrl, { headers });
  }

  post(pathOrUrl: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Page> {
    return this.request(pathOrUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** GET, then follow same-site redirects (at most `hops`); a redirect elsewhere is returned, not followed. */
  async open(pathOrUrl: string, hops = 5): Promise<Page> {
    let page = await this.get(pathOrUrl);
    for (let i = 0; i < hops && page.location && page.status >= 300 && page.status < 400; i++) {
      const next = new URL(page.location, page.url);
      if (next.origin !== new URL(this.base).origin) break;
      page = await this.get(next.toString());
    }
    return page;
  }

  /**
   * Submits the form of `page` whose action ends with `action` (as a person would: its hidden fields,
   * plus what they typed in `values`). Throws when the page has no such form.
   */
  submit(page: Page | string, action: string, values: Record<string, string> = {}): Promise<Page> {
    const html = typeof page === 'string' ? page : page.html;
    const form = parseForms(html).find((f) => f.action === action || f.action.endsWith(action));
    if (!form) throw new Error(`no form with action ${action} on the page:\n${html.slice(0, 2000)}`);
    return this.post(form.action, { ...form.fields, ...values });
  }

  /**
   * The built-in passwordless sign-in: email form → code by mail → session cookie. `readCode` gets
   * the code that was mailed to the address (default: the dev outbox). Returns the final redirect.
   */
  async signIn(email: string, options: { returnTo?: string; readCode?: (email: string) => Promise<string> } = {}): Promise<Page> {
    const readCode = options.readCode ?? ((address: string) => latestCode(this.base, address, this.fetcher));
    const form = await this.get(`/login?return_to=${encodeURIComponent(options.returnTo ?? '/')}`);
    if (form.status !== 200) throw new Error(`sign-in form: ${form.status} ${form.html.slice(0, 500)}`);
    const codeForm = await this.submit(form, '/login', { email });
    if (codeForm.status !== 200) throw new Error(`sign-in email step: ${codeForm.status} ${codeForm.html.slice(0, 500)}`);
    const signedIn = await this.submit(codeForm, '/login/code', { code: await readCode(email) });
    if (signedIn.status !== 303) throw new Error(`sign-in code step: ${signedIn.status} ${signedIn.html.slice(0, 500)}`);
    return signedIn;
  }

  private store(line: string): void {
    this.setCookieLog.push(line);
    const [pair = '', ...attributeParts] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const attributes: Record<string, string | true> = {};
    for (const part of attributeParts) {
      const [key = '', ...rest] = part.split('=');
      attributes[key.trim().toLowerCase()] = rest.length ? rest.join('=').trim() : true;
    }
    if (attributes['max-age'] === '0' || value === '') this.cookies.delete(name);
    else this.cookies.set(name, { name, value, attributes, raw: line });
  }
}

/** A message of the development outbox (`/dev/mailbox.json`). */
export interface MailboxMessage {
  to: string;
  subject: string;
  text: string;
}

/** The messages of the development outbox, newest first. */
export async function mailbox(base: string, fetcher: Fetcher = (url, init) => fetch(url, init)): Promise<MailboxMessage[]> {
  const response = await fetcher(`${base}/dev/mailbox.json`, {});
  if (response.status !== 200) throw new Error(`dev mailbox: ${response.status}`);
  return (await response.json()).messages;
}

/** The newest sign-in code mailed to `email` through the dev outbox (it is in the subject). */
export async function latestCode(base: string, email: string, fetcher?: Fetcher): Promise<string> {
  const code = signInCodeIn(await mailbox(base, fetcher), email);
  if (!code) throw new Error(`no sign-in code for ${email} in the dev mailbox`);
  return code;
}

/** The sign-in code of the newest message to `email` among `messages` (newest first), if any. */
export function signInCodeIn(messages: readonly MailboxMessage[], email: string): string | undefined {
  const message = messages.find((m) => m.to === email.trim().toLowerCase());
  return (message && /\b(\d{6})\b/.exec(message.subject)?.[1]) || undefined;
}
