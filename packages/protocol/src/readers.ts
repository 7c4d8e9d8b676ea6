import { z } from 'zod';
import type { Dialect, RegistrationType } from './dialects.ts';
import type { AccessTokenView, AttemptView, ClaimView, IdentityView, RegistrationView, ScopesView } from './envelopes.ts';
import type { AdvertisedDialects } from './metadata.ts';
import { parseWith, type Parsed } from './schemas.ts';
import {
  defined,
  expected,
  ignored,
  instant,
  interval,
  isObject,
  jsonObject,
  maybe,
  object,
  requireTogether,
  seconds,
  shaped,
  strings,
  text,
  type Json,
} from './wire-values.ts';

/**
 * Response readers, the inverse of the shapers of envelopes.ts: one schema per envelope and dialect,
 * giving back the shapers' views (timestamps in epoch ms). The caller names the projections to read:
 * a service may send one dialect's keys only (a v0.7 service, a `current` one) or the superset
 * (authmd's own). Every projection named must be complete; where two carry the same value,
 * `current`'s is taken, its timestamps being exact. Unknown members are ignored, so what a newer
 * service adds does not break an older agent. Whether two projections agree is for the conformance
 * suite to judge, not for a reader.
 */

/** The dialects whose envelopes these readers know; v0.1 has its own (v01-readers.ts). */
export type EnvelopeDialect = Exclude<Dialect, 'v0.1'>;

/** The envelopes a service's metadata says it sends (`current` when it says neither: the identity endpoint's own dialect). */
export function advertisedEnvelopes(advertised: AdvertisedDialects): EnvelopeDialect[] {
  const named: EnvelopeDialect[] = [...(advertised.current ? ['current' as const] : []), ...(advertised.v07 ? ['v0.7' as const] : [])];
  return named.length ? named : ['current'];
}

/** An attempt as a registration envelope carries it: no dialect sends the attempt's id there. */
export type AttemptRead = Omit<AttemptView, 'id'> & { id?: string };
export type ClaimRead = Omit<ClaimView, 'attempt'> & { attempt?: AttemptRead };
export type RegistrationRead = Omit<RegistrationView, 'claim'> & { claim?: ClaimRead };

/** The registration a claim answer names. `current` does not carry its type, and v0.7 services need not repeat it. */
export interface RegistrationRef {
  id: string;
  type?: RegistrationType;
}

export interface ClaimStartedRead {
  registration: RegistrationRef;
  attempt: AttemptRead;
}

export interface ClaimedRead {
  registration: RegistrationRef;
  identity: IdentityView;
}

export interface RefreshRead {
  registrationId: string;
  identity: IdentityView;
}

/** RFC 6749 §5.1 makes `expires_in` RECOMMENDED and `scope` OPTIONAL: without them they read as undefined. */
export type AccessTokenRead = Omit<AccessTokenView, 'expiresIn' | 'scopes'> & { expiresIn?: number; scopes?: string[] };

type Projections<T> = Record<EnvelopeDialect, (body: Json) => Parsed<T>>;

/** `current` first: where both projections carry a value, its exact one is kept. */
const precedence: readonly EnvelopeDialect[] = ['current', 'v0.7'];

function readProjections<T>(body: unknown, dialects: EnvelopeDialect | readonly EnvelopeDialect[], projections: Projections<T>): Parsed<T> {
  const object = jsonObject(body);
  if (!object.ok) return object;
  const named = typeof dialects === 'string' ? [dialects] : dialects;
  const wanted = precedence.filter((dialect) => named.includes(dialect));
  if (wanted.length === 0) return { ok: false, message: 'dialects: name current or v0.7 (v0.1 answers have readers of their own)' };
  const reads: T[] = [];
  for (const dialect of wanted) {
    const read = projections[dialect](object.value);
    if (!read.ok) return wanted.length > 1 ? { ok: false, message: `${dialect}: ${read.message}` } : read;
    reads.push(read.value);
  }
  return { ok: true, value: reads.reduce(preferFirst) };
}

/**
 * Reads `body` in `dialects` together, else in each envelope dialect alone: for a caller that wants
 * what it can use from a service that advertises one dialect and answers in the other's keys, or
 * breaks one projection of its superset. The refusal, when nothing reads, is the first one.
 */
export function readTolerantly<T>(
  read: (body: unknown, dialects: readonly EnvelopeDialect[]) => Parsed<T>,
  body: unknown,
  dialects: readonly EnvelopeDialect[],
): Parsed<T> {
  const first = read(body, dialects);
  if (first.ok) return first;
  for (const dialect of precedence) {
    const alone = read(body, [dialect]);
    if (alone.ok) return alone;
  }
  return first;
}

/** `first`, with what it lacks taken from `second`, object by object. */
function preferFirst<T>(first: T, second: T): T {
  if (!isObject(first) || !isObject(second)) return first ?? second;
  const merged: Json = { ...second, ...defined(first) };
  for (const key of Object.keys(merged)) {
    if (isObject(first[key]) && isObject(second[key])) merged[key] = preferFirst(first[key], second[key]);
  }
  return merged as T;
}

const registrationType = z.enum(['anonymous', 'service_auth', 'identity_assertion'], { error: expected('anonymous, service_auth or identity_assertion') });

const identityCurrent = object({
  assertion: text,
  expires_at: instant,
  refresh_token: maybe(object({ value: text, expires_at: instant })),
}).transform(
  (identity): IdentityView =>
    defined({
      assertion: identity.assertion,
      expiresAt: identity.expires_at,
      refreshToken: identity.refresh_token && { value: identity.refresh_token.value, expiresAt: identity.refresh_token.expires_at },
    }),
);

/** v0.7's flat identity, when the envelope has one. */
function identityV07(wire: { identity_assertion?: string; assertion_expires?: number }): IdentityView | undefined {
  return wire.identity_assertion === undefined ? undefined : { assertion: wire.identity_assertion, expiresAt: wire.assertion_expires! };
}

// --- POST /agent/identity ---------------------------------------------------------------------

const scopesCurrent = shaped(
  (value): z.ZodType<ScopesView> =>
    Array.isArray(value)
      ? strings.transform((scopes) => ({ kind: 'granted' as const, scopes }))
      : object({ pre_claim: maybe(strings), post_claim: strings }, 'a list of strings or {pre_claim, post_claim}').transform((scopes) =>
          defined({ kind: 'claimable' as const, preClaim: scopes.pre_claim, postClaim: scopes.post_claim }),
        ),
);

const registrationCurrent = z
  .object({
    id: text,
    type: registrationType,
    identity: maybe(identityCurrent),
    scopes: scopesCurrent,
    claim: maybe(
      object({
        token: text,
        expires_at: instant,
        url: text,
        attempt: maybe(object({ verification_uri: text, expires_at: instant })),
      }),
    ),
  })
  .transform(
    ({ id, type, identity, scopes, claim }): RegistrationRead =>
      defined({
        id,
        type,
        identity,
        scopes,
        claim:
          claim &&
          defined({
            token: claim.token,
            expiresAt: claim.expires_at,
            url: claim.url,
            attempt: claim.attempt && { verificationUri: claim.attempt.verification_uri, expiresAt: claim.attempt.expires_at },
          }),
      }),
  );

/** The RFC 8628-shaped type-in ceremony (`claim` of a v0.7 registration). */
const ceremonyV07 = object({ user_code: text, expires_in: seconds, verification_uri: text, interval: maybe(interval) });
type CeremonyV07 = z.output<typeof ceremonyV07>;

const registrationV07 = (now: number) =>
  z
    .object({
      registration_id: text,
      registration_type: registrationType,
      identity_assertion: maybe(text),
      assertion_expires: maybe(instant),
      // A list once the scopes are settled; the superset's `scopes` object is current's.
      scopes: shaped((value): z.ZodType<string[] | undefined> => (Array.isArray(value) ? strings : ignored)),
      pre_claim_scopes: maybe(strings),
      post_claim_scopes: maybe(strings),
      claim_token: maybe(text),
      claim_url: maybe(text),
      claim_token_expires: maybe(instant),
      // v0.7's `claim` is the ceremony; without `user_code` it is current's claim (the superset nests both there).
      claim: shaped((value): z.ZodType<CeremonyV07 | undefined> => (isObject(value) && value.user_code != null ? ceremonyV07 : ignored)),
    })
    .transform((wire, ctx): RegistrationRead => {
      const complete = requireTogether(ctx, wire, {
        identity_assertion: ['assertion_expires'],
        claim_token: ['claim_url', 'claim_token_expires'],
        claim: ['claim_token'],
      });
      if (wire.post_claim_scopes === undefined && wire.scopes === undefined) {
        ctx.issues.push({ code: 'custom', message: 'is required (a list, or post_claim_scopes before the claim)', path: ['scopes'], input: undefined });
        return z.NEVER;
      }
      if (!complete) return z.NEVER;
      const scopes: ScopesView =
        wire.post_claim_scopes !== undefined
          ? defined({ kind: 'claimable', preClaim: wire.pre_claim_scopes, postClaim: wire.post_claim_scopes })
          : { kind: 'granted', scopes: wire.scopes! };
      const ceremony = wire.claim;
      const attempt: AttemptRead | undefined = ceremony && {
        verificationUri: ceremony.verification_uri,
        expiresAt: now + Math.round(ceremony.expires_in * 1000),
        agentCode: ceremony.user_code,
        ...(ceremony.interval !== undefined ? { interval: ceremony.interval } : {}),
      };
      return defined({
        id: wire.registration_id,
        type: wire.registration_type,
        identity: identityV07(wire),
        scopes,
        claim: wire.claim_token === undefined ? undefined : defined({ token: wire.claim_token, expiresAt: wire.claim_token_expires!, url: wire.claim_url!, attempt }),
      });
    });

/**
 * `POST /agent/identity` (and the registration part of a step-up 401), the inverse of
 * `registrationEnvelope`. What a dialect cannot carry comes back undefined:
 * - no dialect sends the attempt's id (`claim.attempt.id`);
 * - `current` sends no agent code and no polling interval (the type-in ceremony is v0.7's);
 * - v0.7 sends no refresh token, and its attempt only as the type-in ceremony: without an agent code
 *   there is no attempt, and its expiry is `expires_in` whole seconds from `now`, so up to a second
 *   early (exact when `current` is read too).
 */
export function readRegistrationEnvelope(body: unknown, dialects: EnvelopeDialect | readonly EnvelopeDialect[], now: number): Parsed<RegistrationRead> {
  return readProjections(body, dialects, {
    current: (object) => parseWith(registrationCurrent, object),
    'v0.7': (object) => parseWith(registrationV07(now), object),
  });
}

/** `{type:"refresh"}` at the identity endpoint, the inverse of `refreshEnvelope` (a `current` envelope: no other dialect refreshes). */
export function readRefreshEnvelope(body: unknown): Parsed<RefreshRead> {
  const object = jsonObject(body);
  if (!object.ok) return object;
  const read = parseWith(z.object({ id: text, identity: identityCurrent }), object.value);
  return read.ok ? { ok: true, value: { registrationId: read.value.id, identity: read.value.identity } } : read;
}

// --- POST /agent/identity/claim -----------------------------------------------------------------

const claimStartedCurrent = z
  .object({ id: text, attempt: object({ verification_uri: text, expires_at: instant }) })
  .transform((wire): ClaimStartedRead => ({
    registration: { id: wire.id },
    attempt: { verificationUri: wire.attempt.verification_uri, expiresAt: wire.attempt.expires_at },
  }));

const claimStartedV07 = z
  .object({
    registration_id: text,
    registration_type: maybe(registrationType),
    claim_attempt_id: text,
    status: z.literal('initiated', { error: expected('"initiated"') }),
    expires_at: instant,
    claim_attempt: object({ user_code: text, verification_uri: text, interval: maybe(interval) }),
  })
  .transform(
    (wire): ClaimStartedRead => ({
      registration: defined({ id: wire.registration_id, type: wire.registration_type }),
      attempt: defined({
        id: wire.claim_attempt_id,
        verificationUri: wire.claim_attempt.verification_uri,
        expiresAt: wire.expires_at,
        agentCode: wire.claim_attempt.user_code,
        interval: wire.claim_attempt.interval,
      }),
    }),
  );

/**
 * A new claim attempt, the inverse of `claimStartedEnvelope`. `current` carries neither the
 * registration's type (its `type` names the claim method) nor the attempt's id, agent code and
 * interval. v0.7 must carry the type-in ceremony (`claim_attempt`, where the page link is); the
 * attempt's expiry is read from `expires_at`, exact, rather than from `claim_attempt.expires_in`.
 */
export function readClaimStartedEnvelope(body: unknown, dialects: EnvelopeDialect | readonly EnvelopeDialect[]): Parsed<ClaimStartedRead> {
  return readProjections(body, dialects, {
    current: (object) => parseWith(claimStartedCurrent, object),
    'v0.7': (object) => parseWith(claimStartedV07, object),
  });
}

const claimed = z.literal('claimed', { error: expected('"claimed"') });

const claimedCurrent = z
  .object({ id: text, status: claimed, identity: identityCurrent })
  .transform((wire): ClaimedRead => ({ registration: { id: wire.id }, identity: wire.identity }));

const claimedV07 = z
  .object({ registration_id: text, registration_type: maybe(registrationType), status: claimed, identity_assertion: text, assertion_expires: instant })
  .transform(
    (wire): ClaimedRead => ({
      registration: defined({ id: wire.registration_id, type: wire.registration_type }),
      identity: { assertion: wire.identity_assertion, expiresAt: wire.assertion_expires },
    }),
  );

/**
 * A claimed registration (`/claim/complete`, or a claim an ID-JAG settled at once), the inverse of
 * `claimedEnvelope`. `current` does not carry the registration's type; v0.7 carries no refresh token.
 */
export function readClaimedEnvelope(body: unknown, dialects: EnvelopeDialect | readonly EnvelopeDialect[]): Parsed<ClaimedRead> {
  return readProjections(body, dialects, {
    current: (object) => parseWith(claimedCurrent, object),
    'v0.7': (object) => parseWith(claimedV07, object),
  });
}

// --- POST /oauth2/token -------------------------------------------------------------------------

const tokenResponseSchema = z
  .object({
    access_token: text,
    token_type: z.string({ error: expected('a string') }).refine((type) => type.toLowerCase() === 'bearer', 'must be Bearer'),
    expires_in: maybe(seconds),
    scope: maybe(z.string({ error: expected('a string') })),
    identity_assertion: maybe(text),
    assertion_expires: maybe(instant),
  })
  .transform((wire, ctx): AccessTokenRead => {
    if (!requireTogether(ctx, wire, { identity_assertion: ['assertion_expires'] })) return z.NEVER;
    return defined({
      accessToken: wire.access_token,
      expiresIn: wire.expires_in,
      scopes: wire.scope?.split(' ').filter(Boolean),
      identity: identityV07(wire),
    });
  });

/**
 * RFC 6749 §5.1 token response (the jwt-bearer exchange, and the v0.7 claim grant, which adds the
 * claimed identity), the inverse of `tokenResponse`; the same in every dialect. `token_type` must
 * be Bearer, case aside (RFC 6750): no other kind of token can be used as the view says.
 */
export function readTokenResponse(body: unknown): Parsed<AccessTokenRead> {
  const object = jsonObject(body);
  return object.ok ? parseWith(tokenResponseSchema, object.value) : object;
}
