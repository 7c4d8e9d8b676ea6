import type { Json } from './api.ts';

/**
 * What `authmd admin` prints for people (without --json): aligned columns and short summaries.
 * Times are printed as the API gives them (ISO 8601, UTC); a missing value is `-`.
 */

/** Columns separated by two spaces, each as wide as its widest cell; the last one is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

const text = (value: unknown): string => (value === null || value === undefined || value === '' ? '-' : String(value));
const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/** Whom a registration is for: its account's email, else the email it named, else its provider. */
function who(registration: Json): string {
  return text(registration.user_email ?? registration.login_hint);
}

export function registrationsTable(registrations: Json[]): string {
  return table(
    ['ID', 'TYPE', 'STATE', 'CREATED', 'EMAIL', 'PROVIDER', 'CLIENT IP'],
    registrations.map((r) => [text(r.id), text(r.type), text(r.state), text(r.created_at), who(r), text(r.provider), text(r.client_ip)]),
  );
}

/** The list's text: the table, then how many, and how to read on. */
export function listText(registrations: Json[], nextCursor: string | undefined): string {
  if (!registrations.length && nextCursor === undefined) return 'No registrations match.';
  const lines = registrations.length ? [registrationsTable(registrations), ''] : [];
  const shown = plural(registrations.length, 'registration');
  lines.push(nextCursor === undefined ? `${shown}.` : `${shown} on this page. More: add --cursor ${nextCursor} (or --all for every page).`);
  return lines.join('\n');
}

function fields(pairs: [string, string][]): string[] {
  const width = Math.max(...pairs.map(([name]) => name.length));
  return pairs.map(([name, value]) => `  ${name.padEnd(width)}  ${value}`);
}

export function registrationText(answer: Json): string {
  const r: Json = answer.registration ?? {};
  const revoked = r.revoked_at ? `${r.revoked_at}${r.revoked_by ? ` by ${r.revoked_by}` : ''}` : '-';
  const lines = [
    `Registration ${text(r.id)}`,
    ...fields([
      ['type', text(r.type)],
      ['state', text(r.state)],
      ['created', text(r.created_at)],
      ['claimed', text(r.claimed_at)],
      ['revoked', revoked],
      ['account', r.user_id ? `${r.user_id}${r.user_email ? ` (${r.user_email})` : ''}` : '-'],
      ['login hint', text(r.login_hint)],
      ['provider', text(r.provider)],
      ['client id', text(r.client_id)],
      ['client ip', text(r.client_ip)],
    ]),
    '',
    'Live credentials',
    ...fields([
      ['access tokens', tokenLine(answer.tokens?.access)],
      ['refresh tokens', tokenLine(answer.tokens?.refresh)],
    ]),
    '',
  ];
  const timeline: Json[] = Array.isArray(answer.timeline) ? answer.timeline : [];
  if (!timeline.length) lines.push('Timeline: no events (or past the audit retention).');
  else {
    lines.push('Timeline');
    lines.push(indent(table(['AT', 'EVENT', 'DATA'], timeline.map((event) => [text(event.at), text(event.type), dataText(event.data)]))));
  }
  return lines.join('\n');
}

function tokenLine(count: Json | undefined): string {
  if (!count || !count.live) return 'none';
  const expiries = count.next_expiry ? (count.next_expiry === count.last_expiry ? `, expires ${count.next_expiry}` : `, expiring ${count.next_expiry} to ${count.last_expiry}`) : '';
  return `${count.live}${expiries}`;
}

/** An event's data on one line: `key=value` pairs (objects as JSON). */
function dataText(data: unknown): string {
  if (data === null || data === undefined) return '-';
  if (typeof data !== 'object' || Array.isArray(data)) return JSON.stringify(data);
  const pairs = Object.entries(data as Json).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  return pairs.length ? pairs.join(' ') : '-';
}

const indent = (block: string) =>
  block
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');

export function revokeText(answer: Json): string {
  return answer.revoked
    ? `Revoked ${answer.id}: its tokens are refused from now on (state ${answer.state}).`
    : `${answer.id} was already revoked by an operator; nothing changed (state ${answer.state}).`;
}

export const selectorText = (by: string, value: string) => `${by === 'client_id' ? 'client id' : by} ${value}`;

export function bulkText(answer: Json): string {
  const finalized = answer.finalized ? ` ${plural(answer.finalized, 'registration')} its provider had revoked ${answer.finalized === 1 ? 'is' : 'are'} now revoked for good.` : '';
  return `Revoked ${plural(answer.revoked ?? 0, 'registration')} with ${selectorText(answer.by, answer.value)}.${finalized}`;
}

export function providersText(providers: Json[]): string {
  if (!providers.length) return 'No trusted agent providers (the service trusts none: trust.providers).';
  return providers
    .map((p) => {
      const keys: Json = p.keys ?? {};
      const events: Json = p.events ?? {};
      const kids: string[] = Array.isArray(keys.kids) ? keys.kids : [];
      const keyLine = keys.error
        ? `error: ${keys.error}${kids.length ? ` (still using ${kids.join(', ')})` : ''}`
        : `${kids.length ? kids.join(', ') : 'none fetched yet'}${keys.fresh_until ? `, fresh until ${keys.fresh_until}` : ''}`;
      return [
        `${text(p.issuer)}${p.display_name ? ` (${p.display_name})` : ''}`,
        ...fields([
          ['client ids', Array.isArray(p.client_ids) && p.client_ids.length ? p.client_ids.join(', ') : 'any'],
          ['algorithms', Array.isArray(p.algorithms) && p.algorithms.length ? p.algorithms.join(', ') : '-'],
          ['jwks', text(keys.jwks_uri)],
          ['keys', keyLine],
          ['accepted', `${events.accepted ?? 0} events${events.last_accepted_at ? `, last ${events.last_accepted_at}` : ''}`],
          ['refused', `${events.refused ?? 0} events${events.last_refused_at ? `, last ${events.last_refused_at}${events.last_refusal ? ` (${events.last_refusal})` : ''}` : ''}`],
        ]),
      ].join('\n');
    })
    .join('\n\n');
}

const yesNo = (value: unknown) => (value ? 'yes' : 'no');

export function keysText(keys: Json[]): string {
  if (!keys.length) return 'No signing keys.';
  return table(
    ['KID', 'ALG', 'CREATED', 'RETIRED', 'SIGNING', 'PUBLISHED'],
    keys.map((k) => [text(k.kid), text(k.alg), text(k.created_at), text(k.retired_at), yesNo(k.signing), yesNo(k.published)]),
  );
}

export function rotatedText(key: Json): string {
  return [
    `New signing key ${text(key.kid)} (${text(key.alg)}), created ${text(key.created_at)}${key.signing ? ': it signs from now on' : ''}.`,
    'The previous key stays published until what it signed has expired.',
  ].join('\n');
}

export function rateLimitsText(answer: Json): string {
  const limits: Json[] = Array.isArray(answer.limits) ? answer.limits : [];
  const network = answer.network && answer.network !== answer.address ? ` (counted as ${answer.network})` : '';
  if (!limits.length) return `No limit is counting for ${answer.address}${network}.`;
  return [
    `Rate limits counting for ${answer.address}${network}:`,
    table(['OPTION', 'COUNT', 'LIMIT', 'RESETS AT'], limits.map((l) => [text(l.option), text(l.count), text(l.limit), text(l.resets_at)])),
  ].join('\n');
}

export function clearedText(answer: Json): string {
  return answer.cleared ? `Cleared ${plural(answer.cleared, 'rate-limit counter')} for ${answer.address}.` : `No rate-limit counter was running for ${answer.address}; nothing to clear.`;
}
