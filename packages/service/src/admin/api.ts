import { z } from 'zod';
import { iso, parseWith, protocolError, registrationTypes, type RegistrationType } from '@authmd/protocol';
import type { EngineContext } from '../engine/context.ts';
import { stateOf, type RegistrationState } from '../engine/registration-lifecycle.ts';
import type { Endpoint, HttpRequest } from '../http/env.ts';
import { readJson, valid } from '../http/request.ts';
import { json } from '../http/responses.ts';
import { registrations, type RegistrationRow } from '../schema.ts';
import { accountEmails } from './accounts.ts';
import { apiOperator } from './operator-auth.ts';
import { addressLimits, clearAddressLimits } from './rate-limit-state.ts';
import { registrationDetail } from './registration-detail.ts';
import { MAX_PAGE, searchRegistrations, type RegistrationFilter } from './registration-search.ts';
import { bulkPreview, bulkRevoke, revokeOne } from './revocations.ts';
import { rotateSigningKey, signingKeys } from './signing-keys.ts';
import { trustedProviders } from './trust-view.ts';

/**
 * The admin API (docs/admin.md): JSON under `<admin.path>/api`, for an operator's token only
 * (never an agent's). Each endpoint authenticates first, then reads, then acts; every action is
 * audited with the operator's name.
 */

export const adminApiPaths = {
  registrations: '/api/registrations',
  registration: '/api/registration',
  revoke: '/api/registration/revoke',
  revocations: '/api/revocations',
  providers: '/api/providers',
  signingKeys: '/api/signing-keys',
  rotateSigningKey: '/api/signing-keys/rotate',
  rateLimits: '/api/rate-limits',
  clearRateLimits: '/api/rate-limits/clear',
} as const;

const states: readonly RegistrationState[] = ['unclaimed', 'claim_pending', 'link_pending', 'claimed', 'expired', 'revoked_by_operator', 'revoked_by_provider'];

const listQuery = z.object({
  email: z.string().min(1).max(320).optional(),
  provider: z.string().min(1).max(2048).optional(),
  client_id: z.string().min(1).max(2048).optional(),
  type: z.enum(registrationTypes as [RegistrationType, ...RegistrationType[]]).optional(),
  state: z.enum(states as [RegistrationState, ...RegistrationState[]]).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
  cursor: z.string().max(512).optional(),
});
const idBody = z.object({ id: z.string().min(1).max(200) });
const bulkBody = z.object({ by: z.enum(['email', 'provider', 'client_id']), value: z.string().min(1).max(2048), dry_run: z.boolean().optional() });
const addressBody = z.object({ address: z.string().min(1).max(64) });

export const listRegistrations: Endpoint = async (request, { ctx }) => {
  apiOperator(ctx, request);
  const query = valid(parseWith(listQuery, queryOf(request, Object.keys(listQuery.shape))));
  const filter: RegistrationFilter = {
    email: query.email,
    provider: query.provider,
    clientId: query.client_id,
    type: query.type,
    state: query.state,
    from: query.from === undefined ? undefined : Date.parse(query.from),
    to: query.to === undefined ? undefined : Date.parse(query.to),
  };
  const page = await searchRegistrations(ctx, filter, query.limit ?? 50, query.cursor);
  return json({ registrations: await summaries(ctx, page.rows), ...(page.next ? { next_cursor: page.next } : {}) });
};

export const getRegistration: Endpoint = async (request, { ctx }) => {
  apiOperator(ctx, request);
  const id = request.query('id');
  if (!id) throw protocolError('invalid_request', 'id: is required.');
  const detail = await registrationDetail(ctx, id);
  if (!detail) throw protocolError('unknown_registration', `No registration ${id.slice(0, 64)}.`);
  return json({
    registration: summary(detail.registration, ctx.clock(), detail.user?.email ?? null),
    timeline: detail.timeline.map((event) => ({ type: event.type, at: iso(event.at), data: event.data })),
    tokens: {
      access: tokenCount(detail.tokens.access),
      refresh: tokenCount(detail.tokens.refresh),
    },
  });
};

export const postRevoke: Endpoint = async (request, { ctx }) => {
  const operator = apiOperator(ctx, request);
  const { id } = valid(parseWith(idBody, await readJson(request, ctx.config.maxBodyBytes)));
  const revoked = await revokeOne(ctx, operator, id);
  const registration = await ctx.store.get(registrations, id);
  if (!registration) throw protocolError('unknown_registration', `No registration ${id.slice(0, 64)}.`);
  return json({ id, revoked, state: stateOf(registration, ctx.clock()) });
};

export const postRevocations: Endpoint = async (request, { ctx }) => {
  const operator = apiOperator(ctx, request);
  const { by, value, dry_run } = valid(parseWith(bulkBody, await readJson(request, ctx.config.maxBodyBytes)));
  if (dry_run) return json({ by, value, would_revoke: await bulkPreview(ctx, { by, value }) });
  const outcome = await bulkRevoke(ctx, operator, { by, value });
  return json({ by, value, revoked: outcome.revoked, finalized: outcome.finalized });
};

export const getProviders: Endpoint = async (request, { ctx }) => {
  apiOperator(ctx, request);
  const providers = await trustedProviders(ctx);
  return json({
    providers: providers.map((p) => ({
      issuer: p.issuer,
      display_name: p.displayName,
      client_ids: p.clientIds ?? null,
      algorithms: p.algorithms,
      keys: { jwks_uri: p.keys.jwksUri ?? null, kids: p.keys.kids, fresh_until: isoOrNull(p.keys.freshUntil), error: p.keys.error ?? null },
      events: {
        accepted: p.events.accepted,
        last_accepted_at: isoOrNull(p.events.lastAcceptedAt),
        refused: p.events.refused,
        last_refused_at: isoOrNull(p.events.lastRefusedAt),
        last_refusal: p.events.lastRefusal,
      },
    })),
  });
};

export const getSigningKeys: Endpoint = async (request, { ctx }) => {
  apiOperator(ctx, request);
  return json({ keys: signingKeys(ctx).map(keyJson) });
};

export const postRotateSigningKey: Endpoint = async (request, { ctx }) => {
  const operator = apiOperator(ctx, request);
  return json({ key: keyJson(await rotateSigningKey(ctx, operator)) });
};

export const getRateLimits: Endpoint = async (request, { ctx }) => {
  apiOperator(ctx, request);
  const address = request.query('address');
  if (!address) throw protocolError('invalid_request', 'address: is required (an IP address).');
  const { source, limits } = await addressLimits(ctx, address);
  return json({ address, network: source, limits: limits.map((l) => ({ option: l.option, limit: l.limit, count: l.count, resets_at: iso(l.resetsAt) })) });
};

export const postClearRateLimits: Endpoint = async (request, { ctx }) => {
  const operator = apiOperator(ctx, request);
  const { address } = valid(parseWith(addressBody, await readJson(request, ctx.config.maxBodyBytes)));
  return json({ address, cleared: await clearAddressLimits(ctx, operator, address) });
};

/** The registrations as the API lists them, each with its account's email. */
async function summaries(ctx: EngineContext, rows: RegistrationRow[]): Promise<Record<string, unknown>[]> {
  const now = ctx.clock();
  const emails = await accountEmails(ctx, rows);
  return rows.map((row) => summary(row, now, row.user_id ? (emails.get(row.user_id) ?? null) : null));
}

function summary(row: RegistrationRow, now: number, userEmail: string | null): Record<string, unknown> {
  return {
    id: row.id,
    type: row.type,
    state: stateOf(row, now),
    created_at: iso(row.created_at),
    claimed_at: isoOrNull(row.claimed_at),
    revoked_at: isoOrNull(row.revoked_at),
    revoked_by: row.revoked_by,
    user_id: row.user_id,
    user_email: userEmail,
    login_hint: row.login_hint,
    provider: row.provider_iss,
    client_id: row.client_id,
    client_ip: row.client_ip,
  };
}

function queryOf(request: HttpRequest, names: string[]): Record<string, string> {
  const query: Record<string, string> = {};
  for (const name of names) {
    const value = request.query(name);
    if (value !== undefined && value !== '') query[name] = value;
  }
  return query;
}

function tokenCount(count: { live: number; nextExpiry: number | null; lastExpiry: number | null }) {
  return { live: count.live, next_expiry: isoOrNull(count.nextExpiry), last_expiry: isoOrNull(count.lastExpiry) };
}

function keyJson(key: { kid: string; alg: string; createdAt: number; retiredAt: number | null; signing: boolean; published: boolean }) {
  return { kid: key.kid, alg: key.alg, created_at: iso(key.createdAt), retired_at: isoOrNull(key.retiredAt), signing: key.signing, published: key.published };
}

function isoOrNull(at: number | null | undefined): string | null {
  return at === null || at === undefined ? null : iso(at);
}
