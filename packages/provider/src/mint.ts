import { randomUUID } from 'node:crypto';
import { encodeJwt, type Keyring } from '@authmd/core/keys';
import { jwtTypes } from '@authmd/protocol';
import { ProviderError } from './errors.ts';

/** The signed-in user an ID-JAG speaks for, as the host identity provider knows them. */
export interface ProviderUser {
  /** Stable, opaque identifier: the ID-JAG's `sub`. */
  id: string;
  email?: string;
  emailVerified?: boolean;
  phoneNumber?: string;
  phoneNumberVerified?: boolean;
  name?: string;
  /** When the user last authenticated, epoch seconds. Services refuse stale values (1 h by default). */
  authTime: number;
  /** Authentication methods (RFC 8176), e.g. `['pwd', 'mfa']`. */
  amr?: string[];
}

export interface MintRequest {
  user: ProviderUser;
  /** The service: its base URL, issuer, or protected resource; resolved to its issuer for `aud`. */
  audience: string;
  /** RFC 8707 resource the agent means to call, passed through as the `resource` claim. */
  resource?: string;
  /** Which agent platform is asking (e.g. a product name). */
  agentPlatform?: string;
  /** The platform's identifier of the agent session or conversation. */
  agentContextId?: string;
}

export interface MintedIdJag {
  assertion: string;
  /** Seconds until `exp`. */
  expiresIn: number;
}

/** Refuses users a service could not match, and malformed values, before anything is consumed. */
export function checkMintRequest(request: MintRequest): void {
  const { user } = request;
  if (!user || typeof user.id !== 'string' || user.id === '') throw new ProviderError('invalid_request', 'user.id is required.');
  if (typeof user.authTime !== 'number' || !Number.isInteger(user.authTime) || user.authTime <= 0) {
    throw new ProviderError('invalid_request', 'user.authTime (epoch seconds of the last sign-in) is required.');
  }
  if (user.amr !== undefined && (!Array.isArray(user.amr) || user.amr.some((m) => typeof m !== 'string'))) {
    throw new ProviderError('invalid_request', 'user.amr must be an array of strings.');
  }
  const verifiedEmail = user.emailVerified === true && typeof user.email === 'string' && user.email !== '';
  const verifiedPhone = user.phoneNumberVerified === true && typeof user.phoneNumber === 'string' && user.phoneNumber !== '';
  if (!verifiedEmail && !verifiedPhone) {
    throw new ProviderError('missing_verified_email', 'The user has no verified email address or phone number; a service could not match them.');
  }
  for (const [name, value] of [
    ['resource', request.resource],
    ['agentPlatform', request.agentPlatform],
    ['agentContextId', request.agentContextId],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) throw new ProviderError('invalid_request', `${name} must be a non-empty string.`);
  }
  if (request.resource !== undefined && !URL.canParse(request.resource)) throw new ProviderError('invalid_request', 'resource must be an absolute URL.');
}

/** Signs the ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant, auth.md profile). */
export function signIdJag(
  keyring: Keyring,
  claims: { issuer: string; clientId: string; audience: string; nowMs: number; lifetimeSeconds: number },
  request: MintRequest,
): Promise<string> {
  const { user } = request;
  const iat = Math.floor(claims.nowMs / 1000);
  const payload: Record<string, unknown> = {
    iss: claims.issuer,
    sub: user.id,
    aud: claims.audience,
    client_id: claims.clientId,
    jti: randomUUID(),
    iat,
    exp: iat + claims.lifetimeSeconds,
    auth_time: user.authTime,
  };
  if (user.email) {
    payload.email = user.email;
    payload.email_verified = user.emailVerified === true;
  }
  if (user.phoneNumber) {
    payload.phone_number = user.phoneNumber;
    payload.phone_number_verified = user.phoneNumberVerified === true;
  }
  if (user.name) payload.name = user.name;
  if (user.amr?.length) payload.amr = [...user.amr];
  if (request.resource !== undefined) payload.resource = request.resource;
  if (request.agentPlatform !== undefined) payload.agent_platform = request.agentPlatform;
  if (request.agentContextId !== undefined) payload.agent_context_id = request.agentContextId;
  const key = keyring.active();
  return encodeJwt(key.alg, key.privateKey, { kid: key.kid, typ: jwtTypes.idJag }, payload);
}
