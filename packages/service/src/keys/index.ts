/** Signing keys and compact JWS for the service's own tokens; the provider package reuses them. */
export { Keyring, type KeyringOptions, type SigningKey } from './keyring.ts';
export { decodeJwt, encodeJwt, jwkThumbprint, typMatches, verifySignature, JwtFormatError, type JwtParts, type SigningAlgorithm } from './jwt.ts';
/** The table the keyring lives in: migrate it in the store you hand to `Keyring.open`. */
export { keyrings } from '../schema.ts';
