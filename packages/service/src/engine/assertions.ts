import { decodeJwt, JwtFormatError, signJwt, typMatches, verifySignature, type JwtParts } from '@authmd/core/keys';
import { jwtTypes, protocolError } from '@authmd/protocol';
import { opaqueValue } from '../secrets.ts';
import type { EngineContext } from './context.ts';

/**
 * The service-signed identity assertion: the agent's identity at this service, exchanged for access
 * tokens at the token endpoint. It carries the registration's *generation* (`gen`): when the
 * registration is claimed, refreshed or revoked the generation moves on and every older assertion
 * stops working, although its signature and `exp` are still fine.
 */

export interface AssertionSubject {
  id: string;
  generation: number;
}

export interface MintedAssertion {
  assertion: string;
  expiresAt: number;
}

export interface VerifiedAssertion {
  registrationId: string;
  generation: number;
  expiresAt: number;
}

export async function mintAssertion(ctx: EngineContext, subject: AssertionSubject, claims: Record<string, unknown> = {}): Promise<MintedAssertion> {
  const key = ctx.keys.active();
  const now = ctx.clock();
  const expiresAt = now + ctx.config.lifetimes.assertionMs;
  const { token: assertion, parts } = await signJwt(key.alg, key.privateKey, { typ: jwtTypes.idJag, kid: key.kid }, {
    ...claims,
    iss: ctx.config.issuer,
    sub: subject.id,
    aud: ctx.config.issuer,
    jti: opaqueValue(ctx.random, '', 16),
    iat: Math.floor(now / 1000),
    exp: Math.floor(expiresAt / 1000),
    gen: subject.generation,
  });
  ctx.verifiedAssertions.remember(assertion, parts, expiresAt);
  return { assertion, expiresAt };
}

/**
 * Verifies one of our own assertions: format, `typ`, an algorithm and key we published, signature,
 * `iss`, `aud`, `exp`/`iat`/`nbf` within the clock skew, `sub` and `gen`. Every failure is
 * `invalid_grant` with a specific `reason`.
 */
export async function verifyAssertion(ctx: EngineContext, token: string): Promise<VerifiedAssertion> {
  const fail = (reason: string, what: string) => protocolError('invalid_grant', what, { reason });
  // An assertion whose signature verified here (or that was minted here) was decoded then too.
  const known = ctx.verifiedAssertions.get(token);
  let parts: Readonly<JwtParts>;
  try {
    parts = known ?? decodeJwt(token);
  } catch (error) {
    throw fail('malformed', `The assertion is not a well-formed JWT (${(error as JwtFormatError).message}).`);
  }
  const { header, payload } = parts;
  if (!typMatches(header.typ, jwtTypes.idJag)) throw fail('wrong_typ', `The assertion must have typ ${jwtTypes.idJag}.`);
  if (header.crit !== undefined) throw fail('unsupported_crit', 'The assertion has critical header parameters this service does not understand.');
  const key = typeof header.kid === 'string' ? await ctx.keys.find(header.kid) : undefined;
  if (!key) throw fail('unknown_key', 'The assertion was not signed by a key this service publishes.');
  if (header.alg !== key.alg) throw fail('unsupported_alg', `The assertion must be signed with ${key.alg}.`);
  if (!known) {
    if (!(await verifySignature(key.alg, key.publicKey, parts))) throw fail('bad_signature', 'The assertion signature does not verify.');
    if (typeof payload.exp === 'number') ctx.verifiedAssertions.remember(token, parts, payload.exp * 1000 + ctx.config.clockSkewMs);
  }

  if (payload.iss !== ctx.config.issuer) throw fail('wrong_issuer', 'The assertion was not issued by this service.');
  if (!audienceIs(payload.aud, ctx.config.issuer)) throw fail('wrong_audience', 'The assertion is not addressed to this service.');
  const now = ctx.clock();
  const skew = ctx.config.clockSkewMs;
  if (typeof payload.exp !== 'number') throw fail('malformed', 'The assertion has no exp.');
  if (payload.exp * 1000 + skew <= now) throw fail('expired', 'The assertion has expired.');
  if (typeof payload.iat !== 'number' || payload.iat * 1000 - skew > now) throw fail('issued_in_future', 'The assertion iat is missing or in the future.');
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf * 1000 - skew > now)) {
    throw fail('not_yet_valid', 'The assertion is not valid yet.');
  }
  if (typeof payload.sub !== 'string' || !Number.isInteger(payload.gen)) throw fail('malformed', 'The assertion has no sub or gen.');
  return { registrationId: payload.sub, generation: payload.gen as number, expiresAt: payload.exp * 1000 };
}

/** `aud` is our issuer, as a string or as an array of exactly that one value. */
function audienceIs(aud: unknown, issuer: string): boolean {
  if (typeof aud === 'string') return aud === issuer;
  return Array.isArray(aud) && aud.length === 1 && aud[0] === issuer;
}
