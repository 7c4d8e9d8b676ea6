/** Signing keys and compact JWS for the service's own tokens; shared by the service and the provider. */
export { Keyring, type KeyDescription, type KeyringOptions, type SigningKey } from './keyring.ts';
export { decodeJwt, encodeJwt, jwkThumbprint, signJwt, typMatches, verifySignature, JwtFormatError, type JwtParts, type SigningAlgorithm } from './jwt.ts';
/** Private keys at rest: key-encryption keys (AUTHMD_KEY_ENCRYPTION_KEY, or a KMS) and their rotation. */
export {
  GENERATE_KEY_ENCRYPTION_KEY,
  KEY_ENCRYPTION_KEY_ENV,
  KeyEncryptionError,
  keyWrapAad,
  localKeyEncryptionKey,
  parseKeyEncryptionKeys,
  resolveKeyEncryption,
  type KeyEncryptionKey,
  type KeyEncryptionOptions,
  type KeyWrapContext,
  type ResolveKeyEncryptionInput,
} from './key-encryption.ts';
/** The table the keyring lives in: migrate it in the store you hand to `Keyring.open`. */
export { keyrings, type KeyringRow, type StoredKey } from './keyring-table.ts';
