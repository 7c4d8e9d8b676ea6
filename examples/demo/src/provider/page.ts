import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isProviderError, type AgentProvider, type Grant, type OutboxEntry } from '@authmd/provider';
import { cookie, escapeHtml, readCookie, readForm } from './http.ts';
import { SESSION_TTL_MS, type Session, type Sessions } from './sessions.ts';
import { DEMO_USERS } from './users.ts';

/**
 * The demo provider's page: sign in as a demo user (email only: it is a demo identity provider),
 * give agents consent for the demo service with one button, see your grants and revoke one, and
 * watch the revocation notice (SET) go out. No scripts at all; a strict CSP; every form carries a
 * CSRF token bound to an HttpOnly cookie; the session is an HttpOnly cookie.
 */

export const SESSION_COOKIE = 'authmd_demo_provider_session';
export const CSRF_COOKIE = 'authmd_demo_provider_csrf';

export const pagePaths = { home: '/', signIn: '/ui/sign-in', signOut: '/ui/sign-out', grant: '/ui/grants', revoke: '/ui/revoke' } as const;
const formPaths = new Set<string>([pagePaths.signIn, pagePaths.signOut, pagePaths.grant, pagePaths.revoke]);

const notices: Record<string, string> = {
  'signed-in': 'Signed in.',
  'signed-out': 'Signed out.',
  granted: 'Consent recorded: agents may now obtain ID-JAGs for you at this service.',
  revoked: 'Consent revoked. The service has been told: it accepted the revocation notice (a signed SET), so agents acting for you there are stopped.',
  'revoked-queued': 'Consent revoked. The service could not be told yet: the revocation notice (a signed SET) is queued, and the provider retries it until the service accepts it.',
  'revoked-failed': 'Consent revoked, but the service refused the revocation notice (a signed SET); see below.',
  'revoked-silently': 'Consent revoked. The service advertises no events endpoint, so no revocation notice was sent.',
  gone: 'That grant no longer exists.',
};

const css = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2129}
main{max-width:46rem;margin:2rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
.demo{background:#fff6d6;border:1px solid #e7c95c;padding:.6rem 1rem;border-radius:8px}
.notice{background:#e8f5e9;padding:.6rem 1rem;border-radius:8px}
.error{background:#fdecea;color:#8a1c12;padding:.6rem 1rem;border-radius:8px}
.note{color:#555;font-size:.9rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e5e8;vertical-align:top}
code{font:.85rem ui-monospace,monospace;word-break:break-all}
form{margin:.4rem 0}form.inline{display:inline;margin:0}
input[type=email]{font-size:1rem;padding:.45rem;width:18rem;max-width:100%;border:1px solid #bbb;border-radius:6px}
button{font-size:.95rem;padding:.45rem 1rem;border-radius:6px;border:1px solid #2456d6;background:#2456d6;color:#fff;cursor:pointer}
button.secondary{background:#fff;color:#2456d6}button.danger{background:#b3261e;border-color:#b3261e}
`;
const cssHash = createHash('sha256').update(css).digest('base64');

export const PAGE_HEADERS: Record<string, string> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${cssHash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
};

export interface PageOptions {
  provider: AgentProvider;
  sessions: Sessions;
  /** The demo service agents are given consent for by the one-button grant. */
  serviceUrl: string;
  /** The provider's own origin: form posts from anywhere else are refused. */
  origin: string;
}

export function demoPage(options: PageOptions): (request: Request, path: string) => Promise<Response | undefined> {
  const { provider, sessions, serviceUrl, origin } = options;
  const secret = randomBytes(32);
  const csrfFor = (value: string): string => createHmac('sha256', secret).update(value).digest('base64url');

  const render = async (request: Request, extra: { status?: number; notice?: string; error?: string; setCookies?: string[] } = {}): Promise<Response> => {
    const setCookies = [...(extra.setCookies ?? [])];
    let csrfValue = readCookie(request, CSRF_COOKIE);
    if (!csrfValue) {
      csrfValue = randomBytes(24).toString('base64url');
      setCookies.push(cookie(CSRF_COOKIE, csrfValue, SESSION_TTL_MS / 1000));
    }
    const session = await sessions.lookup(readCookie(request, SESSION_COOKIE));
    const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(csrfFor(csrfValue))}">`;
    const body = session
      ? await signedInBody({ provider, session, serviceUrl, csrf })
      : signedOutBody(csrf);
    const message = extra.error
      ? `<p class="error">${escapeHtml(extra.error)}</p>`
      : extra.notice
        ? `<p class="notice">${escapeHtml(extra.notice)}</p>`
        : '';
    const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Demo agent provider</title><style>${css}</style></head><body><main>
<h1>Demo agent provider</h1>
<p class="demo"><strong>This is a demo identity provider.</strong> Anyone can sign in as a demo user with just the email address, and no password. A real provider authenticates its users properly before it vouches for them.</p>
${message}${body}</main></body></html>`;
    const headers = new Headers(PAGE_HEADERS);
    for (const c of setCookies) headers.append('Set-Cookie', c);
    return new Response(html, { status: extra.status ?? 200, headers });
  };

  const redirect = (notice: string, setCookies: string[] = []): Response => {
    const headers = new Headers({ Location: `/?done=${notice}`, 'Cache-Control': 'no-store' });
    for (const c of setCookies) headers.append('Set-Cookie', c);
    return new Response(null, { status: 303, headers });
  };

  return async (request, path) => {
    if (path === pagePaths.home) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return new Response('Use GET.', { status: 405, headers: { Allow: 'GET, HEAD' } });
      const done = new URL(request.url).searchParams.get('done');
      return render(request, { notice: done ? notices[done] : undefined });
    }
    if (!formPaths.has(path)) return undefined;
    if (request.method !== 'POST') return new Response('Use POST.', { status: 405, headers: { Allow: 'POST' } });

    // CSRF: the form's token must match the HttpOnly cookie (a foreign site can make the browser send
    // the cookie but can neither read it nor compute the token), and what the browser says about where
    // the form comes from must not name another origin (see postedFromHere).
    const form = await readForm(request);
    const cookieValue = readCookie(request, CSRF_COOKIE);
    if (!form || !cookieValue || !form.csrf || !safeEqual(form.csrf, csrfFor(cookieValue)) || !postedFromHere(request, origin)) {
      return render(request, { status: 403, error: 'This form has expired or did not come from this page. Reload the page and try again.' });
    }

    const token = readCookie(request, SESSION_COOKIE);
    if (path === pagePaths.signIn) {
      const signedIn = await sessions.signIn(form.email ?? '');
      if (!signedIn) return render(request, { status: 401, error: 'No demo account has this email address.' });
      await sessions.signOut(token);
      return redirect('signed-in', [cookie(SESSION_COOKIE, signedIn.token, SESSION_TTL_MS / 1000)]);
    }
    if (path === pagePaths.signOut) {
      await sessions.signOut(token);
      return redirect('signed-out', [cookie(SESSION_COOKIE, '', 0)]);
    }

    const session = await sessions.lookup(token);
    if (!session) return render(request, { status: 401, error: 'Your session has ended. Sign in again.' });
    if (path === pagePaths.grant) {
      const mode = form.mode === 'once' ? 'once' : 'always';
      try {
        await provider.grants.create(session.user.id, { audience: serviceUrl, mode });
      } catch (error) {
        if (!isProviderError(error)) throw error;
        return render(request, { status: 502, error: `Could not record consent for ${serviceUrl}: ${error.message}` });
      }
      return redirect('granted');
    }
    // pagePaths.revoke
    const revoked = await provider.grants.delete(session.user.id, form.grant_id ?? '');
    if (!revoked) return redirect('gone');
    return redirect({ delivered: 'revoked', queued: 'revoked-queued', failed: 'revoked-failed', none: 'revoked-silently' }[revoked.delivery]);
  };
}

function signedOutBody(csrf: string): string {
  const accounts = DEMO_USERS.map(
    (u) => `<li><code>${escapeHtml(u.email)}</code> ${escapeHtml(u.name)}${u.emailVerified ? '' : ' <span class="note">(email not verified: cannot be vouched for)</span>'}</li>`,
  ).join('');
  return `<h2>Sign in</h2>
<form method="post" action="${pagePaths.signIn}">${csrf}<input type="email" name="email" required placeholder="ada@example.com" autocomplete="email"> <button type="submit">Sign in</button></form>
<p class="note">Demo accounts:</p><ul>${accounts}</ul>`;
}

async function signedInBody(options: { provider: AgentProvider; session: Session; serviceUrl: string; csrf: string }): Promise<string> {
  const { provider, session, serviceUrl, csrf } = options;
  const [grants, revocations] = await Promise.all([provider.grants.list(session.user.id), provider.outbox.list({ userId: session.user.id })]);
  const who = `<p>Signed in as <strong>${escapeHtml(session.user.name)}</strong> (<code>${escapeHtml(session.user.email)}</code>) since ${escapeHtml(new Date(session.authTime * 1000).toISOString())}.</p>
<form method="post" action="${pagePaths.signOut}">${csrf}<button class="secondary" type="submit">Sign out</button></form>`;
  const consent = `<h2>Let agents sign you in</h2>
<p>Agents you use can ask this provider for a short-lived, signed statement of who you are (an ID-JAG) for a service you have consented to. Consent lasts 24 hours; "once" allows a single statement.</p>
<form method="post" action="${pagePaths.grant}">${csrf}<input type="hidden" name="mode" value="always"><button type="submit">Allow agents at ${escapeHtml(serviceUrl)}</button></form>
<form method="post" action="${pagePaths.grant}">${csrf}<input type="hidden" name="mode" value="once"><button class="secondary" type="submit">Allow once</button></form>`;
  const grantRows = grants.map((g) => grantRow(g, csrf)).join('');
  const grantTable = grants.length
    ? `<table><thead><tr><th>Service (audience)</th><th>Mode</th><th>Status</th><th>Expires</th><th></th></tr></thead><tbody>${grantRows}</tbody></table>`
    : '<p class="note">No grants: no agent can obtain an ID-JAG for you.</p>';
  const revocationTable = revocations.length
    ? `<h2>Revocation notices</h2>
<p class="note">When you revoke a grant, the provider sends the service a signed revocation event before it answers; when the service cannot be reached, the event stays queued and the provider retries it with growing delays until the service accepts it (the published sample tried once and gave up).</p>
<table><thead><tr><th>Service</th><th>Status</th><th>Attempts</th><th>Last error</th></tr></thead><tbody>${revocations.map(revocationRow).join('')}</tbody></table>`
    : '';
  return `${who}${consent}<h2>Your grants</h2>${grantTable}${revocationTable}`;
}

function grantRow(grant: Grant, csrf: string): string {
  return `<tr><td><code>${escapeHtml(grant.audience)}</code></td><td>${grant.mode}</td><td>${grant.status}</td><td>${escapeHtml(new Date(grant.expiresAt).toISOString())}</td>
<td><form class="inline" method="post" action="${pagePaths.revoke}">${csrf}<input type="hidden" name="grant_id" value="${escapeHtml(grant.id)}"><button class="danger" type="submit">Revoke</button></form></td></tr>`;
}

function revocationRow(entry: OutboxEntry): string {
  return `<tr data-jti="${escapeHtml(entry.jti)}"><td><code>${escapeHtml(entry.audience)}</code></td><td>${entry.status}</td><td>${entry.attempts}</td><td>${escapeHtml(entry.lastError ?? '')}</td></tr>`;
}

/**
 * Whether a form post's browser-sent provenance allows it to come from this origin's own page. The
 * pages are `Referrer-Policy: no-referrer`, under which Chromium sends `Origin: null` with their own
 * form posts, as browsers do for opaque origins (sandboxed frames, data: URLs): `null`, like a
 * missing Origin, says nothing either way and the token decides. A real origin must be ours. Fetch
 * Metadata, when sent, must say same-origin (or `none`: the user's own navigation); `same-site` (a
 * sibling port of 127.0.0.1) and `cross-site` are refused, which also covers a `null` Origin from
 * another site.
 */
export function postedFromHere(request: Request, origin: string): boolean {
  const sentOrigin = request.headers.get('origin');
  if (sentOrigin !== null && sentOrigin !== 'null' && sentOrigin !== origin) return false;
  const site = request.headers.get('sec-fetch-site');
  return site === null || site === 'same-origin' || site === 'none';
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
