/** Every path the protocol puts on the wire, relative to the service's issuer. */
export const paths = {
  authMd: '/auth.md',
  jwks: '/.well-known/jwks.json',
  identity: '/agent/identity',
  claim: '/agent/identity/claim',
  claimComplete: '/agent/identity/claim/complete',
  token: '/oauth2/token',
  revoke: '/oauth2/revoke',
  introspect: '/oauth2/introspect',
  events: '/agent/event/notify',
  v01: {
    register: '/agent/auth',
    claim: '/agent/auth/claim',
    claimComplete: '/agent/auth/claim/complete',
    revoke: '/agent/auth/revoke',
  },
} as const;

/** Well-known suffixes; they are inserted between host and path (RFC 8414 §3, RFC 9728 §3.1). */
export const wellKnown = {
  protectedResource: '/.well-known/oauth-protected-resource',
  authorizationServer: '/.well-known/oauth-authorization-server',
} as const;

/** Removes a trailing slash, so that `https://a.example/` and `https://a.example` name the same thing. */
export function withoutTrailingSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

/**
 * The metadata URL for an identifier (an issuer or a resource): the well-known suffix goes between
 * the origin and the identifier's path, after a terminating slash is removed.
 */
export function wellKnownUrl(identifier: string, suffix: string): string {
  const url = new URL(identifier);
  const path = withoutTrailingSlash(url.pathname);
  return `${url.origin}${suffix}${path}${url.search}`;
}
