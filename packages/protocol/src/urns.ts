/** Grant types accepted at the token endpoint. */
export const grantTypes = {
  jwtBearer: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  /** v0.4–v0.7: the agent polls for the outcome of a type-in ceremony. */
  claim: 'urn:workos:agent-auth:grant-type:claim',
} as const;

export const tokenTypes = {
  idJag: 'urn:ietf:params:oauth:token-type:id-jag',
} as const;

/** JWT `typ` header values, one per kind of token, so that one kind is never accepted as another. */
export const jwtTypes = {
  idJag: 'oauth-id-jag+jwt',
  secEvent: 'secevent+jwt',
  logout: 'logout+jwt',
  accessToken: 'at+jwt',
} as const;

export const eventSchemas = {
  /** A provider withdrew a user's delegation to an agent (v0.3 and later). */
  assertionRevoked: 'https://schemas.workos.com/events/agent/auth/identity/assertion/revoked',
} as const;

export const mediaTypes = {
  json: 'application/json',
  form: 'application/x-www-form-urlencoded',
  markdown: 'text/markdown; charset=utf-8',
  secEvent: 'application/secevent+jwt',
  jwkSet: 'application/jwk-set+json',
} as const;

/** Prefixes of the opaque values the service hands out; they make a leaked value recognisable. */
export const prefixes = {
  registration: 'reg_',
  claimToken: 'clm_',
  attemptToken: 'cvt_',
  attempt: 'cla_',
  refreshToken: 'art_',
  accessToken: 'at_',
  /** v0.1 API keys: long-lived Bearer credentials, stored hashed like every other secret. */
  apiKey: 'sk_',
  user: 'user_',
} as const;
