import type { Dialect, RegistrationType } from './dialects.ts';
import { iso, secondsUntil } from './time.ts';

/**
 * Response shapers. The engine describes an outcome once (the *views* below, timestamps in epoch
 * ms); each shaper writes the `current` projection and the `v0.7` projection and merges them into one
 * superset envelope (profile.md §1). The projections must never disagree on a key: `mergeDisjoint`
 * throws if they do, so a collision cannot reach the wire unnoticed.
 */

export interface IdentityView {
  assertion: string;
  expiresAt: number;
  refreshToken?: { value: string; expiresAt: number };
}

export interface AttemptView {
  id: string;
  /** The page where the user signs in and authorizes (both ceremony directions use it). */
  verificationUri: string;
  expiresAt: number;
  /** The agent code for the type-in direction (v0.7); absent when that dialect is off. */
  agentCode?: string;
  /** Polling interval in seconds for the claim grant (v0.7). */
  interval?: number;
}

export interface ClaimView {
  token: string;
  expiresAt: number;
  url: string;
  attempt?: AttemptView;
}

export type ScopesView =
  /** An unclaimed registration: what it has now and what claiming adds. */
  | { kind: 'claimable'; preClaim?: string[]; postClaim: string[] }
  /** A registration whose scopes are settled (a clean identity_assertion match). */
  | { kind: 'granted'; scopes: string[] };

export interface RegistrationView {
  id: string;
  type: RegistrationType;
  identity?: IdentityView;
  scopes: ScopesView;
  claim?: ClaimView;
}

type Json = Record<string, unknown>;

export class EnvelopeCollisionError extends Error {
  override readonly name = 'EnvelopeCollisionError';
}

/** Merges JSON objects; nested objects merge recursively, and a key with two different values throws. */
export function mergeDisjoint(...parts: Json[]): Json {
  const out: Json = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (value === undefined) continue;
      const existing = out[key];
      if (existing === undefined) out[key] = value;
      else if (isPlainObject(existing) && isPlainObject(value)) out[key] = mergeDisjoint(existing, value);
      else if (existing !== value && JSON.stringify(existing) !== JSON.stringify(value)) {
        throw new EnvelopeCollisionError(`envelope key "${key}" has two different values`);
      }
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pick(dialects: readonly Dialect[], projections: Partial<Record<Dialect, () => Json>>): Json {
  const parts = dialects.flatMap((dialect) => {
    const project = projections[dialect];
    return project ? [project()] : [];
  });
  return mergeDisjoint(...parts);
}

function identityCurrent(identity: IdentityView): Json {
  return {
    assertion: identity.assertion,
    expires_at: iso(identity.expiresAt),
    refresh_token: identity.refreshToken && {
      value: identity.refreshToken.value,
      expires_at: iso(identity.refreshToken.expiresAt),
    },
  };
}

/** The RFC 8628-shaped ceremony block of v0.7 (`claim` on registration, `claim_attempt` on claim start). */
function ceremonyV07(attempt: AttemptView, now: number): Json | undefined {
  if (attempt.agentCode === undefined) return undefined;
  return {
    user_code: attempt.agentCode,
    expires_in: secondsUntil(attempt.expiresAt, now),
    verification_uri: attempt.verificationUri,
    interval: attempt.interval,
  };
}

/** `POST /agent/identity` success (and the registration part of a step-up 401). */
export function registrationEnvelope(view: RegistrationView, dialects: readonly Dialect[], now: number): Json {
  const { identity, claim, scopes } = view;
  return pick(dialects, {
    current: () => ({
      id: view.id,
      type: view.type,
      identity: identity && identityCurrent(identity),
      scopes: scopes.kind === 'granted' ? scopes.scopes : { pre_claim: scopes.preClaim, post_claim: scopes.postClaim },
      claim: claim && {
        token: claim.token,
        expires_at: iso(claim.expiresAt),
        url: claim.url,
        attempt: claim.attempt && {
          verification_uri: claim.attempt.verificationUri,
          expires_at: iso(claim.attempt.expiresAt),
        },
      },
    }),
    'v0.7': () => ({
      registration_id: view.id,
      registration_type: view.type,
      identity_assertion: identity?.assertion,
      assertion_expires: identity && iso(identity.expiresAt),
      scopes: scopes.kind === 'granted' ? scopes.scopes : undefined,
      pre_claim_scopes: scopes.kind === 'claimable' ? scopes.preClaim : undefined,
      post_claim_scopes: scopes.kind === 'claimable' ? scopes.postClaim : undefined,
      claim_token: claim?.token,
      claim_url: claim?.url,
      claim_token_expires: claim && iso(claim.expiresAt),
      claim: claim?.attempt && ceremonyV07(claim.attempt, now),
    }),
  });
}

/** `POST /agent/identity {type:"refresh"}`: only the current dialect has refresh tokens. */
export function refreshEnvelope(registrationId: string, identity: IdentityView): Json {
  return { id: registrationId, type: 'refresh', identity: identityCurrent(identity) };
}

/** `POST /agent/identity/claim` when a new attempt started. */
export function claimStartedEnvelope(
  registration: { id: string; type: RegistrationType },
  attempt: AttemptView,
  dialects: readonly Dialect[],
  now: number,
): Json {
  return pick(dialects, {
    current: () => ({
      id: registration.id,
      type: 'service_auth',
      attempt: { verification_uri: attempt.verificationUri, expires_at: iso(attempt.expiresAt) },
    }),
    'v0.7': () => ({
      registration_id: registration.id,
      registration_type: registration.type,
      claim_attempt_id: attempt.id,
      status: 'initiated',
      expires_at: iso(attempt.expiresAt),
      claim_attempt: ceremonyV07(attempt, now),
    }),
  });
}

/** The registration is claimed: `/claim/complete`, or a clean ID-JAG claim of an anonymous registration. */
export function claimedEnvelope(
  registration: { id: string; type: RegistrationType },
  identity: IdentityView,
  dialects: readonly Dialect[],
): Json {
  return pick(dialects, {
    current: () => ({ id: registration.id, status: 'claimed', identity: identityCurrent(identity) }),
    'v0.7': () => ({
      registration_id: registration.id,
      registration_type: registration.type,
      status: 'claimed',
      identity_assertion: identity.assertion,
      assertion_expires: iso(identity.expiresAt),
    }),
  });
}

export interface AccessTokenView {
  accessToken: string;
  expiresIn: number;
  scopes: string[];
  /** The claim grant (v0.7) also hands over the post-claim identity assertion. */
  identity?: IdentityView;
}

/** RFC 6749 §5.1 token response. */
export function tokenResponse(view: AccessTokenView): Json {
  return mergeDisjoint({
    access_token: view.accessToken,
    token_type: 'Bearer',
    expires_in: view.expiresIn,
    scope: view.scopes.join(' '),
    identity_assertion: view.identity?.assertion,
    assertion_expires: view.identity && iso(view.identity.expiresAt),
  });
}
