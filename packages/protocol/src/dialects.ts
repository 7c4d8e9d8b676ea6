/**
 * The three generations of auth.md a service can speak at once (profile.md §1).
 * - `current`: nested envelopes, read-back ceremony, refresh tokens.
 * - `v0.7`: flat envelopes, type-in ceremony polled with the claim grant.
 * - `v0.1`: `/agent/auth`, credentials returned directly, emailed link.
 */
export const dialects = ['current', 'v0.7', 'v0.1'] as const;
export type Dialect = (typeof dialects)[number];

export type RegistrationType = 'anonymous' | 'service_auth' | 'identity_assertion';
export const registrationTypes: readonly RegistrationType[] = ['anonymous', 'service_auth', 'identity_assertion'];
