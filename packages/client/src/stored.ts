import { iso, type AccessTokenRead, type IdentityView } from '@authmd/protocol';
import type { StoredAccessToken, StoredIdentity } from './store/contract.ts';

/** What the store keeps of an identity the service handed out (its times as ISO-8601, as the official client stores them). */
export function storedIdentity(identity: IdentityView): StoredIdentity {
  const { refreshToken } = identity;
  return {
    assertion: identity.assertion,
    expires_at: iso(identity.expiresAt),
    ...(refreshToken ? { refresh_token: { value: refreshToken.value, expires_at: iso(refreshToken.expiresAt) } } : {}),
  };
}

/**
 * What the store keeps of a token response. A response without `expires_in` (RFC 6749 allows it) is
 * stored as expiring at once: the next request exchanges again rather than trust a lifetime nobody gave.
 */
export function storedAccessToken(token: AccessTokenRead, now: number, resource: string | undefined): StoredAccessToken {
  const scope = token.scopes?.join(' ');
  return {
    value: token.accessToken,
    expires_at: iso(now + (token.expiresIn ?? 0) * 1000),
    ...(scope ? { scope } : {}),
    ...(resource ? { resource } : {}),
  };
}
