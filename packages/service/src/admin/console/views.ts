import { iso } from '@authmd/protocol';
import type { EngineContext } from '../../engine/context.ts';
import type { HttpRequest, HttpResponse } from '../../http/env.ts';
import { csrfToken, type CsrfToken } from '../../pages/csrf.ts';
import { signOutForm } from '../../pages/current-user.ts';
import { escapeHtml, servicePage } from '../../pages/layout.ts';
import type { AdminConfig } from '../config.ts';

/** The console's paths, under `<issuer path><admin.path>`. */
export const consolePaths = {
  registrations: '',
  registration: '/registration',
  revoke: '/registration/revoke',
  bulkRevoke: '/revoke',
  providers: '/providers',
  keys: '/keys',
  rotateKey: '/keys/rotate',
  rateLimits: '/rate-limits',
  clearRateLimits: '/rate-limits/clear',
} as const;

export function consoleUrl(ctx: EngineContext, path: string, query: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
  const search = params.size ? `?${params}` : '';
  return `${ctx.config.issuerPath}${(ctx.config.admin as AdminConfig).path}${path}${search}`;
}

/** A console page: the navigation, who is signed in with a way out, then the page's own content. */
export function consolePage(
  ctx: EngineContext,
  request: HttpRequest,
  options: { title: string; operator: string; body: (csrf: CsrfToken) => string; status?: number },
): HttpResponse {
  const csrf = csrfToken(ctx, request);
  const link = (path: string, label: string) => `<a href="${escapeHtml(consoleUrl(ctx, path))}">${label}</a>`;
  const nav = `<nav class="admin">${link(consolePaths.registrations, 'Registrations')}${link(consolePaths.bulkRevoke, 'Bulk revoke')}${link(consolePaths.providers, 'Providers')}${link(consolePaths.keys, 'Signing keys')}${link(consolePaths.rateLimits, 'Rate limits')}</nav>`;
  const signOut = signOutForm(ctx, csrf.field, consoleUrl(ctx, consolePaths.registrations), {
    formClass: 'whoami',
    buttonClass: 'link',
    lead: `<span class="note">Operator: ${escapeHtml(options.operator)}</span> `,
  });
  return servicePage(ctx, { title: options.title, status: options.status, csrf, wide: true, body: `${nav}${signOut}${options.body(csrf)}` });
}

export function when(at: number | null | undefined): string {
  return at === null || at === undefined ? '—' : escapeHtml(iso(at).replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'));
}

/** A table that scrolls sideways inside its own box on a narrow screen, never the page. */
export function table(head: string[], rows: string[][]): string {
  const th = head.map((cell) => `<th>${escapeHtml(cell)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.map((cell) => `<td>${cell}</td>`).join('')}</tr>`).join('');
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`;
}
