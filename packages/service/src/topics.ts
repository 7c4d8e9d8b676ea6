/**
 * Invalidation topics shared by the replicas of one service (and by resource servers that listen to
 * them): the names are part of the wire between processes, so they live in one place.
 */

/** Every revocation of an access token (or of all of a registration's) is announced here. */
export const TOKENS_TOPIC = 'tokens';

/** A provider's JWKS that changed (message: its jwks_uri): cached copies must be fetched again. */
export const JWKS_TOPIC = 'jwks';
