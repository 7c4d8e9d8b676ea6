import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import { decodeJwt, JwtFormatError, typMatches } from '@authmd/core/keys';
import { asciiDescription, errorSpec, isEmail, jwtTypes, protocolError, ProtocolError } from '@authmd/protocol';
import type { TrustedIssuer } from '../config.ts';
import { replays } from '../schema.ts';
import { CimdError, validateClientIdUrl } from '../trust/cimd.ts';
import { JwksError } from '../trust/jwks-cache.ts';
import type { EngineContext } from './context.ts';

/** An ID-JAG that passed every check, reduced to what the service uses. */
export interface VerifiedIdJag {
  provider: TrustedIssuer;
  iss: string;
  sub: string;
  /** Issued at, epoch ms: a provider's revocation refuses ID-JAGs minted before it. */
  issuedAt: number;
  email: string | undefined;
  phone: string | undefined;
  amr: string[] | undefined;
  /** The agent platform's client id at the provider (checked against the provider's policy). */
  clientId: string;
}

const invalid = (reason: string, what: string) => protocolError('invalid_request', what, { reason });

/**
 * Verifies a provider's ID-JAG (profile.md §2, standards.md A1 and A10), in this order:
 * 1. the issuer is on the trust list, exactly as written (before anything is fetched);
 * 2. `typ` is `oauth-id-jag+jwt`, `alg` is on the issuer's allow-list (never `none`, never HMAC);
 * 3. the signature verifies with the issuer's published keys (one refetch for an unknown `kid`);
 * 4. `exp`, `iat` (not in the future), `nbf`, with the clock skew; `sub` and `jti` present;
 * 5. `aud` is one value: this service's issuer or one of its resources;
 * 6. the `jti` is burned (single use per issuer, shared by replicas) before any later check;
 * 7. `client_id` satisfies the issuer's policy (CIMD documents must name the same keys);
 * 8. a verified email or phone number; 9. `auth_time` fresh; 10. the required `amr`.
 */
export async function verifyIdJag(ctx: EngineContext, token: string): Promise<VerifiedIdJag> {
  let parts;
  try {
    parts = decodeJwt(token);
  } catch (error) {
    throw invalid('malformed', `The assertion is not a well-formed JWT (${(error as JwtFormatError).message}).`);
  }
  const provider = ctx.trust.get(parts.payload.iss);
  if (!provider) throw protocolError('issuer_not_enabled', `The ID-JAG issuer ${String(parts.payload.iss).slice(0, 200)} is not trusted by this service.`);
  if (!typMatches(parts.header.typ, jwtTypes.idJag)) throw invalid('invalid_token_type', `An ID-JAG must have typ ${jwtTypes.idJag}.`);
  if (typeof parts.header.alg !== 'string' || !provider.algorithms.includes(parts.header.alg)) {
    throw invalid('unsupported_algorithm', `${provider.displayName} ID-JAGs must be signed with ${provider.algorithms.join(', ')}.`);
  }

  const { jwksUri, payload } = await verifySignature(ctx, provider, token);
  const now = ctx.clock();
  const skew = ctx.config.clockSkewMs;
  if (typeof payload.iat !== 'number' || payload.iat * 1000 - skew > now) throw invalid('issued_in_future', 'The ID-JAG iat is missing or in the future.');
  if (typeof payload.jti !== 'string' || !payload.jti) throw invalid('malformed', 'The ID-JAG has no jti.');
  if (typeof payload.sub !== 'string' || !payload.sub) throw invalid('malformed', 'The ID-JAG has no sub.');
  if (!audienceIsUs(ctx, payload.aud)) {
    throw invalid('invalid_audience', `The ID-JAG aud must be exactly ${ctx.config.issuer} (one value).`);
  }

  const fresh = await ctx.store.insertIfAbsent(replays, { key: `id-jag\0${provider.issuer}\0${payload.jti}`, expires_at: payload.exp! * 1000 + skew });
  if (!fresh) throw invalid('replay_detected', 'This ID-JAG was already used; mint a new one.');

  await checkClientId(ctx, provider, payload.client_id, jwksUri);
  const email = payload.email_verified === true && typeof payload.email === 'string' && isEmail(payload.email) ? payload.email : undefined;
  const phone = payload.phone_number_verified === true && typeof payload.phone_number === 'string' ? payload.phone_number : undefined;
  if (!email && !phone) throw invalid('missing_verified_email', 'The ID-JAG carries no verified email address or phone number.');
  checkAuthTime(ctx, payload.auth_time, now);
  const amr = Array.isArray(payload.amr) ? payload.amr.filter((value): value is string => typeof value === 'string') : undefined;
  const missing = provider.requireAmr.filter((method) => !amr?.includes(method));
  if (missing.length) throw loginRequired(ctx, `This service requires sign-in at ${provider.displayName} with ${missing.join(', ')}.`, 'amr_policy');

  return { provider, iss: provider.issuer, sub: payload.sub, issuedAt: payload.iat * 1000, email, phone, amr, clientId: payload.client_id as string };
}

async function verifySignature(ctx: EngineContext, provider: TrustedIssuer, token: string): Promise<{ jwksUri: string; payload: JWTPayload }> {
  try {
    return await ctx.trust.verify(provider, token, {
      typ: jwtTypes.idJag,
      requiredClaims: ['exp', 'iat', 'jti', 'sub', 'aud'],
      clockToleranceSeconds: ctx.config.clockSkewMs / 1000,
      now: ctx.clock(),
    });
  } catch (error) {
    if (!(error instanceof JwksError)) throw classify(error);
    ctx.logger.warn('provider keys unavailable', { issuer: provider.issuer, error: error.message });
    throw protocolError('server_error', `The keys of ${provider.displayName} could not be fetched; try again shortly.`, { reason: 'jwks_unavailable' });
  }
}

/** jose's errors, by their stable codes, to our reasons. */
function classify(error: unknown): ProtocolError {
  if (error instanceof errors.JWTExpired) return invalid('expired', 'The ID-JAG has expired; mint a new one.');
  if (error instanceof errors.JWKSNoMatchingKey) return invalid('unknown_key', 'No published key of the provider matches this ID-JAG.');
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalid('invalid_signature', 'The ID-JAG signature does not verify.');
  if (error instanceof errors.JOSEAlgNotAllowed) return invalid('unsupported_algorithm', 'The ID-JAG algorithm is not allowed.');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason = error.claim === 'nbf' ? 'not_yet_valid' : error.claim === 'typ' ? 'invalid_token_type' : 'invalid_claims';
    return invalid(reason, `The ID-JAG ${error.claim} claim is not acceptable.`);
  }
  if (error instanceof errors.JOSEError) return invalid('invalid_token', 'The ID-JAG could not be verified.');
  return error instanceof ProtocolError ? error : invalid('invalid_token', 'The ID-JAG could not be verified.');
}

/** Exactly one audience: our issuer, or one of our resources (both spellings are published). */
function audienceIs(values: unknown, accepted: string[]): boolean {
  const list = Array.isArray(values) ? values : [values];
  return list.length === 1 && typeof list[0] === 'string' && accepted.includes(list[0]);
}

function audienceIsUs(ctx: EngineContext, aud: unknown): boolean {
  return audienceIs(aud, [ctx.config.issuer, ...ctx.config.resources.map((r) => r.resource)]);
}

async function checkClientId(ctx: EngineContext, provider: TrustedIssuer, clientId: unknown, jwksUri: string): Promise<void> {
  if (typeof clientId !== 'string' || !clientId) throw invalid('invalid_client_id', 'The ID-JAG has no client_id.');
  if (provider.clientIds && !provider.clientIds.includes(clientId)) {
    throw invalid('invalid_client_id', `client_id ${clientId.slice(0, 200)} is not allowed for ${provider.displayName}.`);
  }
  if (clientId === provider.issuer) return;
  const notAUrl = validateClientIdUrl(clientId, { allowLoopback: ctx.config.trust.allowLoopback });
  if (notAUrl) {
    if (provider.clientIds) return; // the operator allow-listed it as an opaque identifier
    throw invalid('invalid_client_id', `client_id is neither the issuer nor a valid client metadata URL: ${notAUrl}`);
  }
  try {
    const metadata = await ctx.trust.clientMetadata(clientId);
    if (metadata.jwks_uri !== jwksUri) throw invalid('invalid_client_id', 'The client metadata document names other keys than the ones that signed this ID-JAG.');
  } catch (error) {
    if (!(error instanceof CimdError)) throw error;
    // How a fetch to a caller-named host went stays in the log, not in the answer.
    const what = error.reason === 'invalid_document' ? error.message : 'The client metadata document could not be fetched.';
    throw protocolError('invalid_request', what, { reason: 'invalid_client_id', detail: error.message });
  }
}

function checkAuthTime(ctx: EngineContext, authTime: unknown, now: number): void {
  const maxAge = ctx.config.trust.maxAuthAgeMs;
  const skew = ctx.config.clockSkewMs;
  if (typeof authTime !== 'number') throw loginRequired(ctx, 'The ID-JAG has no auth_time.', 'auth_time_missing');
  if (authTime * 1000 - skew > now) throw loginRequired(ctx, 'The ID-JAG auth_time is in the future.', 'auth_time_in_future');
  const age = Math.round((now - authTime * 1000) / 1000);
  if (age * 1000 > maxAge + skew) throw loginRequired(ctx, `auth_time is ${age}s old; at most ${maxAge / 1000}s is accepted.`, 'auth_time_too_old');
}

/** 401 with `WWW-Authenticate: AgentAuth error="login_required", max_age=…` (v0.5): the user must sign in at the provider again. */
function loginRequired(ctx: EngineContext, what: string, reason: string): ProtocolError {
  const maxAge = ctx.config.trust.maxAuthAgeMs / 1000;
  const description = asciiDescription(`${what} ${errorSpec('login_required').hint}`);
  return new ProtocolError('login_required', description, {
    reason,
    extra: { max_age: maxAge },
    headers: { 'WWW-Authenticate': `AgentAuth error="login_required", max_age="${maxAge}", error_description="${description}"` },
  });
}
