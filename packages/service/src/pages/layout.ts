import { createHash } from 'node:crypto';
import { escapeHtml } from '../html.ts';
import type { EngineContext } from '../engine/context.ts';
import type { HttpResponse } from '../http/env.ts';

/**
 * The service's HTML pages: one layout, no scripts at all, one inline stylesheet allowed by its
 * hash. The CSP forbids framing (clickjacking of Authorize), foreign form targets and everything
 * else; no-referrer keeps the attempt token in the URL from leaking to other sites.
 */
const css = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2129}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002;overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:0 0 1rem}
.brand{display:flex;align-items:center;gap:.6rem;color:#555;margin-bottom:1.2rem}
.brand img{width:32px;height:32px;border-radius:6px}
.brand span{min-width:0}
.code{font:700 2.4rem/1 ui-monospace,monospace;letter-spacing:.4rem;text-align:center;padding:1rem;background:#f0f4ff;border-radius:8px}
.error{background:#fdecea;color:#8a1c12;padding:.7rem 1rem;border-radius:8px}
.note{color:#555;font-size:.9rem}
form{margin:1rem 0}
input[type=email],input[type=text]{font-size:1.1rem;padding:.5rem;width:100%;box-sizing:border-box;border:1px solid #bbb;border-radius:6px}
button{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #2456d6;background:#2456d6;color:#fff;cursor:pointer;overflow-wrap:normal}
button.secondary{background:#fff;color:#2456d6}
button.link{font:inherit;padding:0;border:0;border-radius:0;background:none;color:#2456d6;text-decoration:underline;text-underline-offset:2px}
button:focus-visible{outline:2px solid #2456d6;outline-offset:2px}
div.alt p{margin:0;color:#333}
div.deny{border-top:1px solid #e3e5e8;margin-top:1.5rem}
.row{display:flex;gap:.6rem}
ul{padding-left:1.2rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;max-width:100%;margin:.4rem 0 0;padding:.7rem .8rem;background:#f6f7f9;border-radius:6px;font-size:.85rem}
ul.mail{list-style:none;padding:0}
ul.mail li{border-top:1px solid #e3e5e8;padding:.8rem 0}
ul.mail p{margin:0}
main.wide{max-width:64rem}
nav.admin{display:flex;flex-wrap:wrap;gap:.4rem 1rem;margin:-.4rem 0 .6rem}
form.whoami{margin:0 0 1rem}
form.search{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:.6rem;align-items:end}
form.search label{display:block;font-size:.9rem;color:#333}
form.search input,select{font-size:1rem;padding:.45rem;width:100%;box-sizing:border-box;border:1px solid #bbb;border-radius:6px;background:#fff}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem;overflow-wrap:break-word}
.scroll table{min-width:40rem}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e3e5e8;vertical-align:top}
td code{font-size:.8rem;overflow-wrap:anywhere}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}
dl.facts dt{color:#555}
dl.facts dd{margin:0}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
button.danger{background:#b3261e;border-color:#b3261e}
.ok{background:#e7f5ea;color:#1b5e20;padding:.7rem 1rem;border-radius:8px}
.warning{background:#fff4e5;color:#7a4100;padding:.7rem 1rem;border-radius:8px}
@media (max-width:36rem){main{margin:1rem;padding:1.2rem}.row{flex-wrap:wrap}}
`;
const cssHash = createHash('sha256').update(css).digest('base64');

export interface PageOptions {
  title: string;
  body: string;
  status?: number;
  serviceName: string;
  logoUri?: string;
  headers?: Record<string, string | string[]>;
  /** Room for tables (the operator's console). */
  wide?: boolean;
}

export function page(options: PageOptions): HttpResponse {
  const logoOrigin = options.logoUri ? ` ${new URL(options.logoUri).origin}` : '';
  const brand = `<div class="brand">${options.logoUri ? `<img src="${escapeHtml(options.logoUri)}" alt="">` : ''}<span>${escapeHtml(options.serviceName)}</span></div>`;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(options.title)} · ${escapeHtml(options.serviceName)}</title><style>${css}</style></head><body><main${options.wide ? ' class="wide"' : ''}>${brand}<h1>${escapeHtml(options.title)}</h1>${options.body}</main></body></html>`;
  return {
    status: options.status ?? 200,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': `default-src 'none'; style-src 'sha256-${cssHash}'; img-src 'self'${logoOrigin}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
      ...options.headers,
    },
    body: html,
  };
}

/** A page of this service: its name and logo, and the CSRF cookie when the form token needed a new one. */
export function servicePage(
  ctx: EngineContext,
  options: { title: string; body: string; status?: number; csrf?: { setCookie?: string }; headers?: Record<string, string | string[]>; wide?: boolean },
): HttpResponse {
  const cookie: Record<string, string> = options.csrf?.setCookie ? { 'Set-Cookie': options.csrf.setCookie } : {};
  return page({
    title: options.title,
    body: options.body,
    status: options.status,
    serviceName: ctx.config.name,
    logoUri: ctx.config.logoUri,
    headers: { ...cookie, ...options.headers },
    wide: options.wide,
  });
}

/**
 * True when a browser would read `location` as a reference to another host: two slashes or
 * backslashes in any mix at its start (`//host`, `/\host`, `\\host`), also behind the leading spaces
 * and control characters the URL parser trims and the tabs and line breaks it removes anywhere.
 */
export function isProtocolRelative(location: string): boolean {
  const cleaned = location.replace(/^[\u0000-\u0020]+/, '').replace(/[\t\n\r]/g, '');
  return /^[/\\]{2}/.test(cleaned);
}

/**
 * A 303 to `location`: a path of this site, or an absolute URL the service chose (a host's sign-in
 * page). A protocol-relative reference would take the browser to whatever host it names, so it is
 * refused outright (an error, hence a 500 page): paths from a request go through `safeReturnTo`.
 */
export function redirect(location: string, headers: Record<string, string | string[]> = {}): HttpResponse {
  if (isProtocolRelative(location)) throw new Error(`refusing a protocol-relative redirect: ${JSON.stringify(location)}`);
  return { status: 303, headers: { Location: location, 'Cache-Control': 'no-store', ...headers } };
}

/** A hidden form field. */
export function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`;
}

export { escapeHtml };
