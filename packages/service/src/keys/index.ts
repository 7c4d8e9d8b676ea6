/** Signing keys, JWTs and key encryption, from @authmd/core (the provider uses them too). */
export * from '@authmd/core/keys';
