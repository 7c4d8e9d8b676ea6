import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { decodeJwt, typMatches } from '@authmd/core/keys';
import type { StoreOps } from '@authmd/core/store';
import { eventSchemas, jwtTypes, SetDeliveryError } from '@authmd/protocol';
import type { TrustedIssuer } from '../config.ts';
import { registrations, replays } from '../schema.ts';
import { JwksError } from '../trust/jwks-cache.ts';
import type { EngineContext } from './context.ts';
import { delegationKey, recordRevocation } from './delegations.ts';
import { countAccepted, countRefused } from './provider-event-stats.ts';
import { providerRevoke } from './registration-lifecycle.ts';

/** How old a security event may be when it arrives; its `jti` is remembered that long. */
const MAX_EVENT_AGE_MS = 7 * 86_400_000;

/**
 * The two forms a provider's revocation arrives in: an RFC 8417 SET (`events` names what happened)
 * or v0.1's OIDC back-channel-logout-style token, whose arrival is itself the revocation.
 */
export interface ProviderEventFormat {
  typ: string;
  /** `set`: act on the events listed; `logout`: the token revokes the user's delegation. */
  kind: 'set' | 'logout';
}
export const SET_FORMAT: ProviderEventFormat = { typ: jwtTypes.secEvent, kind: 'set' };
export const LOGOUT_FORMAT: ProviderEventFormat = { typ: jwtTypes.logout, kind: 'logout' };

/**
 * `POST /agent/event/notify` (RFC 8417 SETs pushed per RFC 8935), and v0.1's `POST /agent/auth/revoke`
 * (`logout+jwt`). The issuer is checked against the trust list before any key is fetched; then
 * `typ`, algorithm, signature, `aud`, `iat`, `jti`. The `jti` is recorded in the same transaction as
 * the event's effect, so a redelivered token is acknowledged without a second effect, and an
 * acknowledged one is never lost. Returns how many registrations it revoked (0 for a redelivery).
 */
export async function receiveSecurityEvent(ctx: EngineContext, token: string, format: ProviderEventFormat = SET_FORMAT): Promise<number> {
  const { provider, payload } = await authenticate(ctx, token, format);
  try {
    return await apply(ctx, provider, payload, format);
  } catch (error) {
    // Counted only for a token the provider signed: anyone can post one it did not, as often as they like.
    if (error instanceof SetDeliveryError) await countRefused(ctx, provider.issuer, error.err);
    throw error;
  }
}

/** The trusted provider that signed the token, and its claims; refuses anything else before its claims are read. */
async function authenticate(ctx: EngineContext, token: string, format: ProviderEventFormat): Promise<{ provider: TrustedIssuer; payload: JWTPayload }> {
  let parts;
  try {
    parts = decodeJwt(token);
  } catch {
    throw new SetDeliveryError('invalid_request', 'The body is not a compact JWS.');
  }
  const provider = ctx.trust.get(parts.payload.iss);
  if (!provider) throw new SetDeliveryError('invalid_issuer', 'The SET issuer is not a trusted provider of this service.');
  if (!typMatches(parts.header.typ, format.typ)) throw new SetDeliveryError('invalid_request', `This token must have typ ${format.typ}.`);
  if (typeof parts.header.alg !== 'string' || !provider.algorithms.includes(parts.header.alg)) {
    throw new SetDeliveryError('invalid_request', `SETs of this issuer must be signed with ${provider.algorithms.join(', ')}.`);
  }
  return { provider, payload: await verify(ctx, provider, token, format.typ) };
}

/** The claims of a signed event, checked, and its effect with its `jti`, in one transaction. */
async function apply(ctx: EngineContext, provider: TrustedIssuer, payload: JWTPayload, format: ProviderEventFormat): Promise<number> {
  const now = ctx.clock();
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (aud.length !== 1 || aud[0] !== ctx.config.issuer) throw new SetDeliveryError('invalid_audience', `The SET aud must be exactly ${ctx.config.issuer}.`);
  const issuedAt = (payload.iat ?? 0) * 1000;
  if (issuedAt - ctx.config.clockSkewMs > now || now - issuedAt > MAX_EVENT_AGE_MS) {
    throw new SetDeliveryError('invalid_request', 'The SET iat is in the future or more than 7 days old.');
  }
  if (typeof payload.sub !== 'string' || !payload.sub) throw new SetDeliveryError('invalid_request', 'The SET has no sub.');
  const events = payload.events;
  if (format.kind === 'set' && (typeof events !== 'object' || events === null || Array.isArray(events) || Object.keys(events).length === 0)) {
    throw new SetDeliveryError('invalid_request', 'The SET has no events.');
  }
  // Other event types are ignored (RFC 8417 §2.2); a logout token is a revocation whatever it lists.
  const revokes = format.kind === 'logout' || Object.hasOwn(events as object, eventSchemas.assertionRevoked);

  const revoked = await ctx.store.transaction(async (tx) => {
    const fresh = await tx.insertIfAbsent(replays, { key: `set\0${provider.issuer}\0${payload.jti}`, expires_at: issuedAt + MAX_EVENT_AGE_MS + ctx.config.clockSkewMs });
    if (!fresh) return 0; // delivered before: acknowledged again, nothing done twice
    await countAccepted(tx, provider.issuer, now);
    return revokes ? revokeDelegation(ctx, tx, provider.issuer, payload.sub!, revocationTime(ctx, payload, issuedAt)) : 0;
  });
  await ctx.tokens.forgetCached();
  return revoked;
}

/**
 * The user withdrew consent at the provider: everything derived from `(iss, sub)` here stops —
 * access and refresh tokens, identity assertions (the generation moves on), claim handles, and the
 * delegation itself (marked revoked; an ID-JAG minted later revives it).
 */
async function revokeDelegation(ctx: EngineContext, tx: StoreOps, iss: string, sub: string, revokedAt: number): Promise<number> {
  const key = delegationKey(iss, sub);
  await recordRevocation(ctx, tx, iss, sub, revokedAt);
  let revoked = 0;
  for (const registration of await tx.findMany(registrations, 'delegation_key', key)) if (await providerRevoke(ctx, tx, registration, iss)) revoked += 1;
  return revoked;
}

/**
 * When the user revoked, on the provider's clock: `toe` (RFC 8417 time of event) when it is sane,
 * else the SET's `iat`. ID-JAGs are compared with it on that same clock, so a SET that arrives late
 * does not refuse consent the user gave again in between.
 */
function revocationTime(ctx: EngineContext, payload: JWTPayload, issuedAt: number): number {
  const toe = typeof payload.toe === 'number' ? payload.toe * 1000 : undefined;
  return toe !== undefined && toe <= issuedAt + ctx.config.clockSkewMs && toe > issuedAt - MAX_EVENT_AGE_MS ? toe : issuedAt;
}

async function verify(ctx: EngineContext, provider: TrustedIssuer, token: string, typ: string): Promise<JWTPayload> {
  try {
    const verified = await ctx.trust.verify(provider, token, {
      typ,
      requiredClaims: ['iat', 'jti'],
      clockToleranceSeconds: ctx.config.clockSkewMs / 1000,
      now: ctx.clock(),
    });
    return verified.payload;
  } catch (error) {
    if (error instanceof JwksError) throw new SetDeliveryError('invalid_key', 'The provider keys could not be fetched.', error.message);
    throw classify(error);
  }
}

function classify(error: unknown): SetDeliveryError {
  if (error instanceof errors.JWKSNoMatchingKey) return new SetDeliveryError('invalid_key', 'No published key of the provider matches this SET.');
  if (error instanceof errors.JWSSignatureVerificationFailed) return new SetDeliveryError('authentication_failed', 'The SET signature does not verify.');
  if (error instanceof errors.JWTClaimValidationFailed) return new SetDeliveryError('invalid_request', `The SET ${error.claim} claim is not acceptable.`);
  return new SetDeliveryError('invalid_request', 'The SET could not be verified.');
}
