import { ProtocolError, registrationTypes } from '@authmd/protocol';
import type { EngineContext } from '../../engine/context.ts';
import { stateOf } from '../../engine/registration-lifecycle.ts';
import type { Endpoint, HttpRequest, HttpResponse } from '../../http/env.ts';
import { csrfToken } from '../../pages/csrf.ts';
import { signOutForm } from '../../pages/current-user.ts';
import { errorPage, htmlErrors } from '../../pages/html-errors.ts';
import { escapeHtml, hidden, redirect } from '../../pages/layout.ts';
import { accountEmails } from '../accounts.ts';
import { addressLimits, clearAddressLimits } from '../rate-limit-state.ts';
import { registrationDetail } from '../registration-detail.ts';
import { searchRegistrations, type RegistrationFilter } from '../registration-search.ts';
import { bulkPreview, bulkRevoke, revokeOne, type BulkSelector } from '../revocations.ts';
import { rotateSigningKey, signingKeys } from '../signing-keys.ts';
import { trustedProviders } from '../trust-view.ts';
import { operatorForm, operatorForPage } from './gate.ts';
import { consolePage, consolePaths, consoleUrl, table, when } from './views.ts';

/**
 * The operator's console: the admin API's operations as pages, for a signed-in operator. No
 * scripts; every form carries the CSRF token; every action answers with a redirect (or, for a bulk
 * revocation, a page saying what it did), so a reload never repeats it.
 */

const PAGE_SIZE = 25;
const STATES = ['unclaimed', 'claim_pending', 'link_pending', 'claimed', 'expired', 'revoked_by_operator', 'revoked_by_provider'];
const SEARCH_FIELDS = ['email', 'provider', 'client_id', 'type', 'state', 'from', 'to'];
const DAY = 86_400_000;
const BULK_BY: Record<BulkSelector['by'], string> = { email: 'User email', provider: 'Provider issuer', client_id: 'Client id' };

type PageHandler = (ctx: EngineContext, request: HttpRequest, operator: string) => Promise<HttpResponse>;
type FormHandler = (ctx: EngineContext, request: HttpRequest, operator: string, form: Record<string, string>) => Promise<HttpResponse>;

/** A page for operators only: others are sent to sign in, or refused with a way to sign out. */
function operatorPage(handler: PageHandler): Endpoint {
  return forbiddenWithSignOut(async (request, { ctx }) => {
    const gate = await operatorForPage(ctx, request, request.pathname + queryString(request));
    return 'response' in gate ? gate.response : handler(ctx, request, gate.operator);
  });
}

function operatorAction(handler: FormHandler): Endpoint {
  return forbiddenWithSignOut(async (request, { ctx }) => {
    const { operator, form } = await operatorForm(ctx, request);
    return handler(ctx, request, operator, form);
  });
}

function forbiddenWithSignOut(endpoint: Endpoint): Endpoint {
  return htmlErrors(async (request, env) => {
    try {
      return await endpoint(request, env);
    } catch (error) {
      if (!(error instanceof ProtocolError) || error.code !== 'operator_forbidden') throw error;
      const csrf = csrfToken(env.ctx, request);
      const signOut = signOutForm(env.ctx, csrf.field, consoleUrl(env.ctx, consolePaths.registrations));
      const response = errorPage(env.ctx, 403, 'Operators only', error.description, csrf.setCookie ? { 'Set-Cookie': csrf.setCookie } : {}, signOut);
      return { ...response, error: error.code };
    }
  });
}

/** `GET <admin>`: search, newest first, a page at a time. */
export const registrationsPage = operatorPage(async (ctx, request, operator) => {
  const q = (name: string) => request.query(name)?.trim() || undefined;
  const type = registrationTypes.find((t) => t === q('type'));
  const state = STATES.find((s) => s === q('state')) as RegistrationFilter['state'];
  const from = q('from');
  const to = q('to');
  const filter: RegistrationFilter = { email: q('email'), provider: q('provider'), clientId: q('client_id'), type, state, from: dayStart('from', from), to: dayAfter(to) };
  const page = await searchRegistrations(ctx, filter, PAGE_SIZE, q('cursor'));
  const emails = await accountEmails(ctx, page.rows);
  const field = (name: string, label: string, placeholder: string) =>
    `<label>${label}<input type="text" name="${name}" value="${escapeHtml(q(name) ?? '')}" placeholder="${placeholder}"></label>`;
  const date = (name: string, label: string, value?: string) => `<label>${label}<input type="date" name="${name}" value="${escapeHtml(value ?? '')}"></label>`;
  const select = (name: string, label: string, values: readonly string[], chosen?: string) =>
    `<label>${label}<select name="${name}"><option value="">any</option>${values.map((v) => `<option${v === chosen ? ' selected' : ''}>${v}</option>`).join('')}</select></label>`;
  const search = `<form method="get" class="search" action="${escapeHtml(consoleUrl(ctx, consolePaths.registrations))}">
${field('email', 'User email', 'ada@example.com')}${field('provider', 'Provider issuer', 'https://idp.example')}${field('client_id', 'Client id', 'https://agent.example/client.json')}
${select('type', 'Type', registrationTypes, type)}${select('state', 'State', STATES, state)}${date('from', 'Created from', from)}${date('to', 'Created until', to)}<div><button type="submit">Search</button></div></form>`;
  const now = ctx.clock();
  const results = page.rows.length
    ? table(
        ['Registration', 'Type', 'State', 'For', 'Provider', 'Created'],
        page.rows.map((r) => [
          `<a href="${escapeHtml(consoleUrl(ctx, consolePaths.registration, { id: r.id }))}">${escapeHtml(r.id)}</a>`,
          escapeHtml(r.type),
          `<span class="state">${escapeHtml(stateOf(r, now))}</span>`,
          escapeHtml((r.user_id ? emails.get(r.user_id) : undefined) ?? r.login_hint ?? '—'),
          escapeHtml(r.provider_iss ?? '—'),
          when(r.created_at),
        ]),
      )
    : '<p>No registration matches.</p>';
  const next = page.next ? `<p><a href="${escapeHtml(consoleUrl(ctx, consolePaths.registrations, { ...Object.fromEntries(SEARCH_FIELDS.map((n) => [n, q(n)])), cursor: page.next }))}">Next page →</a></p>` : '';
  return consolePage(ctx, request, { title: 'Registrations', operator, body: () => `${search}${results}${next}` });
});

/** `GET <admin>/registration?id=`: one registration, its credentials, its timeline, and Revoke. */
export const registrationPage = operatorPage(async (ctx, request, operator) => {
  const id = request.query('id') ?? '';
  const detail = await registrationDetail(ctx, id);
  if (!detail) throw new ProtocolError('unknown_registration', `No registration ${id.slice(0, 64)}.`);
  const r = detail.registration;
  const facts: [string, string][] = [
    ['Id', escapeHtml(r.id)],
    ['Type', escapeHtml(r.type)],
    ['State', `<span class="state" data-testid="state">${escapeHtml(detail.state)}</span>`],
    ['User', escapeHtml(detail.user ? `${detail.user.email ?? detail.user.id}` : (r.login_hint ? `${r.login_hint} (not claimed)` : '—'))],
    ['Provider', escapeHtml(r.provider_iss ?? '—')],
    ['Client id', escapeHtml(r.client_id ?? '—')],
    ['Created', when(r.created_at)],
    ['Claimed', when(r.claimed_at)],
    ['Revoked', r.revoked_at === null ? '—' : `${when(r.revoked_at)} by ${escapeHtml(r.revoked_by ?? 'operator')}`],
    ['Access tokens', `${detail.tokens.access.live} live${detail.tokens.access.lastExpiry ? `, last expires ${when(detail.tokens.access.lastExpiry)}` : ''}`],
    ['Refresh tokens', `${detail.tokens.refresh.live} live${detail.tokens.refresh.lastExpiry ? `, last expires ${when(detail.tokens.refresh.lastExpiry)}` : ''}`],
  ];
  const done = request.query('done') === 'revoked' ? '<p class="ok">Revoked. Its assertions and tokens no longer work, on every replica.</p>' : '';
  const revocable = detail.state !== 'revoked_by_operator';
  const timeline = table(
    ['When', 'Event', 'Details'],
    detail.timeline.map((event) => [when(event.at), escapeHtml(event.type), `<code>${escapeHtml(JSON.stringify(event.data ?? {}))}</code>`]),
  );
  return consolePage(ctx, request, {
    title: `Registration ${r.id}`,
    operator,
    body: (csrf) => `${done}<dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
${revocable ? `<form method="post" action="${escapeHtml(consoleUrl(ctx, consolePaths.revoke))}">${csrf.field}${hidden('id', r.id)}<p>Revoking ends its assertions and tokens for good; no later ID-JAG or claim brings it back.</p><button type="submit" class="danger">Revoke this registration</button></form>` : ''}
<h2>Timeline</h2>${detail.timeline.length ? timeline : '<p>No events kept.</p>'}`,
  });
});

/** `POST <admin>/registration/revoke` */
export const revokeAction = operatorAction(async (ctx, _request, operator, form) => {
  const id = form.id ?? '';
  await revokeOne(ctx, operator, id);
  return redirect(consoleUrl(ctx, consolePaths.registration, { id, done: 'revoked' }));
});

/**
 * `GET <admin>/revoke`: choose what to revoke by, then see how many registrations it would end
 * before confirming. `POST` does it and says how many it ended.
 */
export const bulkRevokePage = operatorPage(async (ctx, request, operator) => {
  const selector = bulkSelector(request.query('by'), request.query('value'));
  const choose = `<form method="get" class="search" action="${escapeHtml(consoleUrl(ctx, consolePaths.bulkRevoke))}">
<label>Revoke every registration of<select name="by">${Object.entries(BULK_BY).map(([by, label]) => `<option value="${by}"${by === selector?.by ? ' selected' : ''}>${label}</option>`).join('')}</select></label>
<label>Value<input type="text" name="value" value="${escapeHtml(selector?.value ?? '')}" required></label><div><button type="submit"${selector ? ' class="secondary"' : ''}>Show what it would end</button></div></form>`;
  if (!selector) return consolePage(ctx, request, { title: 'Bulk revoke', operator, body: () => choose });
  const count = await bulkPreview(ctx, selector);
  const confirm = (csrf: { field: string }) =>
    count === 0
      ? '<p>No live registration matches: there is nothing to revoke.</p>'
      : `<form method="post" action="${escapeHtml(consoleUrl(ctx, consolePaths.bulkRevoke))}">${csrf.field}${hidden('by', selector.by)}${hidden('value', selector.value)}
<p class="warning" data-testid="bulk-count">This ends <b>${count}</b> registration${count === 1 ? '' : 's'} of ${escapeHtml(BULK_BY[selector.by].toLowerCase())} <b>${escapeHtml(selector.value)}</b>, for good.</p>
<button type="submit" class="danger">Revoke ${count} registration${count === 1 ? '' : 's'}</button></form>`;
  return consolePage(ctx, request, { title: 'Bulk revoke', operator, body: (csrf) => `${choose}${confirm(csrf)}` });
});

export const bulkRevokeAction = operatorAction(async (ctx, request, operator, form) => {
  const selector = bulkSelector(form.by, form.value);
  if (!selector) throw new ProtocolError('invalid_request', 'Choose what to revoke by and give its value.');
  const outcome = await bulkRevoke(ctx, operator, selector);
  return consolePage(ctx, request, {
    title: 'Revoked',
    operator,
    body: () =>
      `<p class="ok" data-testid="bulk-outcome">Revoked ${outcome.revoked} registration${outcome.revoked === 1 ? '' : 's'} of ${escapeHtml(BULK_BY[selector.by].toLowerCase())} ${escapeHtml(selector.value)}${outcome.finalized ? `, and made ${outcome.finalized} that its provider had revoked final` : ''}.</p>
<p><a href="${escapeHtml(consoleUrl(ctx, consolePaths.registrations, selector.by === 'email' ? { email: selector.value } : selector.by === 'provider' ? { provider: selector.value } : { client_id: selector.value }))}">See them</a></p>`,
  });
});

/** `GET <admin>/providers`: the trust list, each provider's keys and the events it sent. */
export const providersPage = operatorPage(async (ctx, request, operator) => {
  const providers = await trustedProviders(ctx);
  const rows = providers.map((p) => [
    `${escapeHtml(p.displayName)}<br><span class="note">${escapeHtml(p.issuer)}</span>`,
    p.keys.error ? `<span class="error">${escapeHtml(p.keys.error)}</span>` : `${p.keys.kids.map(escapeHtml).join('<br>') || '—'}<br><span class="note">kept until ${when(p.keys.freshUntil)}</span>`,
    `${p.events.accepted} accepted, last ${when(p.events.lastAcceptedAt)}<br>${p.events.refused} refused${p.events.lastRefusal ? `, last ${when(p.events.lastRefusedAt)} (${escapeHtml(p.events.lastRefusal)})` : ''}`,
    `<a href="${escapeHtml(consoleUrl(ctx, consolePaths.registrations, { provider: p.issuer }))}">Registrations</a> · <a href="${escapeHtml(consoleUrl(ctx, consolePaths.bulkRevoke, { by: 'provider', value: p.issuer }))}">Revoke all</a>`,
  ]);
  const body = providers.length ? table(['Provider', 'Keys', 'Security events', ''], rows) : '<p>This service trusts no agent provider (the <code>trust</code> option).</p>';
  return consolePage(ctx, request, { title: 'Agent providers', operator, body: () => body });
});

/** `GET <admin>/keys`: the signing keys; `POST <admin>/keys/rotate` makes a new one. */
export const keysPage = operatorPage(async (ctx, request, operator) => {
  const rows = signingKeys(ctx).map((k) => [escapeHtml(k.kid), escapeHtml(k.alg), when(k.createdAt), k.signing ? '<b>signing</b>' : k.published ? 'retired, still published' : 'retired', when(k.retiredAt)]);
  const done = request.query('done') === 'rotated' ? '<p class="ok">A new key signs from now on; the previous one stays published until what it signed has expired.</p>' : '';
  return consolePage(ctx, request, {
    title: 'Signing keys',
    operator,
    body: (csrf) => `${done}${table(['Key id', 'Algorithm', 'Created', 'Status', 'Retired'], rows)}
<form method="post" action="${escapeHtml(consoleUrl(ctx, consolePaths.rotateKey))}">${csrf.field}<button type="submit">Rotate now</button></form>`,
  });
});

export const rotateKeyAction = operatorAction(async (ctx, _request, operator) => {
  await rotateSigningKey(ctx, operator);
  return redirect(consoleUrl(ctx, consolePaths.keys, { done: 'rotated' }));
});

/** `GET <admin>/rate-limits?address=`: an address's running limits; `POST …/clear` clears them. */
export const rateLimitsPage = operatorPage(async (ctx, request, operator) => {
  const address = request.query('address')?.trim() || undefined;
  const lookup = `<form method="get" class="search" action="${escapeHtml(consoleUrl(ctx, consolePaths.rateLimits))}"><label>IP address<input type="text" name="address" value="${escapeHtml(address ?? '')}" placeholder="203.0.113.7" required></label><div><button type="submit"${address ? ' class="secondary"' : ''}>Look up</button></div></form>`;
  if (!address) return consolePage(ctx, request, { title: 'Rate limits', operator, body: () => lookup });
  const { source, limits } = await addressLimits(ctx, address);
  const done = request.query('done') === 'cleared' ? '<p class="ok">Cleared.</p>' : '';
  const rows = limits.map((l) => [escapeHtml(l.option), `${l.count} of ${l.limit}`, when(l.resetsAt)]);
  return consolePage(ctx, request, {
    title: 'Rate limits',
    operator,
    body: (csrf) => `${lookup}${done}<p>Network <b>${escapeHtml(source)}</b>${source !== address ? ` (the limits count ${escapeHtml(address)} with its network)` : ''}.</p>
${rows.length ? `${table(['Limit', 'Used', 'Resets'], rows)}<form method="post" action="${escapeHtml(consoleUrl(ctx, consolePaths.clearRateLimits))}">${csrf.field}${hidden('address', address)}<button type="submit">Clear these limits</button></form>` : '<p>No limit is counting this network now.</p>'}`,
  });
});

export const clearRateLimitsAction = operatorAction(async (ctx, _request, operator, form) => {
  const address = form.address ?? '';
  await clearAddressLimits(ctx, operator, address);
  return redirect(consoleUrl(ctx, consolePaths.rateLimits, { address, done: 'cleared' }));
});

/** The start (UTC) of a `YYYY-MM-DD` day from the form's date field. */
function dayStart(field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const at = /^\d{4}-\d{2}-\d{2}$/.test(value) ? Date.parse(`${value}T00:00:00Z`) : NaN;
  if (Number.isNaN(at)) throw new ProtocolError('invalid_request', `${field}: ${value.slice(0, 32)} is not a date (YYYY-MM-DD).`);
  return at;
}

/** The end of that day: the search's `to` is exclusive, the form's last day inclusive. */
function dayAfter(value: string | undefined): number | undefined {
  const start = dayStart('to', value);
  return start === undefined ? undefined : start + DAY;
}

function bulkSelector(by: string | undefined, value: string | undefined): BulkSelector | undefined {
  const trimmed = value?.trim();
  if (!trimmed || (by !== 'email' && by !== 'provider' && by !== 'client_id')) return undefined;
  return { by, value: trimmed.slice(0, 2048) };
}

function queryString(request: HttpRequest): string {
  const names = ['id', ...SEARCH_FIELDS, 'cursor', 'by', 'value', 'address'];
  const params = new URLSearchParams(names.flatMap((name) => (request.query(name) ? [[name, request.query(name)!]] : [])));
  return params.size ? `?${params}` : '';
}
