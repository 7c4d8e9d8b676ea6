import type { PageQuery } from '@authmd/core/store';
import { protocolError, type RegistrationType } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { stateOf, type RegistrationState } from '../engine/registration-lifecycle.ts';
import { normalizeEmail } from '../engine/users.ts';
import { registrations, users, type RegistrationRow } from '../schema.ts';

/**
 * The operator's search over registrations, newest first, in pages that cost the same at the first
 * page and the millionth: each page is read from an ordered index (created_at, id), by the most
 * selective filter given (email, client id, provider), from where the previous page ended. The
 * other filters (type, state) are applied to what the index gives, reading at most SCAN_LIMIT rows
 * per page: a page may then hold fewer rows than asked, with a cursor to read on.
 */

export interface RegistrationFilter {
  /** The account's email, or the address a service_auth registration named before anyone claimed it. */
  email?: string;
  /** The agent provider's issuer. */
  provider?: string;
  /** The ID-JAG's client id (the agent platform). */
  clientId?: string;
  type?: RegistrationType;
  state?: RegistrationState;
  /** created_at ≥ from (epoch ms). */
  from?: number;
  /** created_at < to (epoch ms). */
  to?: number;
}

export interface RegistrationPage {
  rows: RegistrationRow[];
  /** Where the next page starts; absent on the last page. */
  next?: string;
}

export const MAX_PAGE = 100;
const SCAN_LIMIT = 1000;

type Position = { value: number; key: string };
type Stream = Omit<PageQuery<RegistrationRow>, 'after' | 'limit'>;

export async function searchRegistrations(ctx: EngineContext, filter: RegistrationFilter, limit: number, cursor?: string): Promise<RegistrationPage> {
  const streams = await streamsFor(ctx, filter);
  const keep = postFilter(filter, ctx.clock());
  const rows: RegistrationRow[] = [];
  let after = cursor === undefined ? undefined : decodeCursor(cursor);
  let scanned = 0;
  while (rows.length < limit && scanned < SCAN_LIMIT) {
    const batch = await mergedBatch(ctx, streams, after, Math.max(limit - rows.length, 20));
    let rowsLeft = false;
    for (const [index, row] of batch.rows.entries()) {
      scanned += 1;
      after = positionOf(row);
      if (keep(row)) rows.push(row);
      if (rows.length === limit) {
        rowsLeft = index < batch.rows.length - 1;
        break;
      }
    }
    if (batch.exhausted && !rowsLeft) return { rows };
  }
  return { rows, next: after && encodeCursor(after) };
}

/** The index reads that give every registration the filter can match (with duplicates when two overlap). */
async function streamsFor(ctx: EngineContext, filter: RegistrationFilter): Promise<Stream[]> {
  const range = filter.from !== undefined || filter.to !== undefined ? { from: filter.from, to: filter.to } : undefined;
  const by = (column?: 'user_id' | 'login_hint' | 'provider_iss' | 'client_id', value?: string): Stream => ({
    orderBy: 'created_at',
    ...(column && value !== undefined ? { where: { column, value } } : {}),
    ...(range ? { range } : {}),
  });
  if (filter.email !== undefined) {
    const email = normalizeEmail(filter.email);
    const user = await ctx.store.findOne(users, 'email', email);
    return [by('login_hint', email), ...(user ? [by('user_id', user.id)] : [])];
  }
  if (filter.clientId !== undefined) return [by('client_id', filter.clientId)];
  if (filter.provider !== undefined) return [by('provider_iss', filter.provider)];
  return [by()];
}

function postFilter(filter: RegistrationFilter, now: number): (row: RegistrationRow) => boolean {
  return (row) =>
    (filter.provider === undefined || row.provider_iss === filter.provider) &&
    (filter.clientId === undefined || row.client_id === filter.clientId) &&
    (filter.type === undefined || row.type === filter.type) &&
    (filter.state === undefined || stateOf(row, now) === filter.state);
}

/**
 * The next rows after `after` over all streams, merged newest first and without duplicates. A
 * stream that filled its batch may hold more rows before any row past its last one, so the merge
 * stops at the earliest of those last rows; `exhausted` when every stream has given everything.
 */
async function mergedBatch(ctx: EngineContext, streams: Stream[], after: Position | undefined, size: number): Promise<{ rows: RegistrationRow[]; exhausted: boolean }> {
  const batches = await Promise.all(streams.map((stream) => ctx.store.page(registrations, { ...stream, ...(after ? { after } : {}), limit: size })));
  const full = batches.filter((batch) => batch.length === size);
  const stop = full.length === 0 ? undefined : full.map((batch) => positionOf(batch.at(-1)!)).reduce((a, b) => (compare(a, b) < 0 ? a : b));
  const seen = new Set<string>();
  const rows = batches
    .flat()
    .sort((a, b) => compare(positionOf(a), positionOf(b)))
    .filter((row) => !seen.has(row.id) && seen.add(row.id) && (stop === undefined || compare(positionOf(row), stop) <= 0));
  return { rows, exhausted: stop === undefined };
}

function positionOf(row: RegistrationRow): Position {
  return { value: row.created_at, key: row.id };
}

/** Negative when `a` comes first (newer, or as new with the greater id). */
function compare(a: Position, b: Position): number {
  if (a.value !== b.value) return b.value - a.value;
  return a.key === b.key ? 0 : a.key > b.key ? -1 : 1;
}

function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.value, position.key]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): Position {
  try {
    const [value, key] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (Number.isSafeInteger(value) && typeof key === 'string' && key.length <= 200) return { value: value as number, key };
  } catch {
    // Not ours: refused below.
  }
  throw protocolError('invalid_request', 'cursor: not a cursor this service gave; start again without it.');
}
