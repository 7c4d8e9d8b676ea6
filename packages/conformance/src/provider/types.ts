/** What a check can ask of the built-in test provider (see test-provider.ts). */
export interface IdJagRequest {
  /** `aud`: the service's issuer (or resource). */
  audience: string;
  /** The user: `sub` is derived from it, `email` is it, `email_verified` true unless overridden. */
  email: string;
  /** Claims to add or replace (`undefined` removes one): `exp`, `iat`, `auth_time`, `jti`, `client_id`, `email_verified`… */
  claims?: Record<string, unknown>;
  /** Protected-header members to add or replace (`undefined` removes one): `typ`, `kid`, `alg`. */
  header?: Record<string, unknown>;
  /** Which key signs: the published one (default) or the foreign one, which is in no JWKS. */
  signWith?: SigningKeyName;
}

export interface SetRequest {
  /** `aud`: the service's issuer. */
  audience: string;
  /** The user whose delegation is revoked (the `sub_id` names the same subject as the ID-JAGs' `sub`). */
  email: string;
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  /** Which key signs: the published one (default) or the foreign one, which is in no JWKS. */
  signWith?: SigningKeyName;
}

export type SigningKeyName = 'provider' | 'foreign';

export interface TrustEntry {
  issuer: string;
  displayName: string;
  clientIds: string[];
  jwksUri: string;
}
