import { table, type JsonValue } from '../store/contract.ts';

export type StoredKey = {
  kid: string;
  alg: string;
  /** The private key in plaintext: only in a keyring kept without a key-encryption key (keys/key-encryption.ts). */
  privateJwk?: { [member: string]: JsonValue };
  /**
   * The private key (PKCS #8 DER) encrypted by the key-encryption key `kek`; `data` is base64url of
   * what that key's `wrap` returned. Bound to this keyring's id and this `kid`: it does not decrypt anywhere else.
   */
  wrappedPrivateKey?: { kek: string; data: string };
  publicJwk: { [member: string]: JsonValue };
  createdAt: number;
  /** When the key stopped signing; it stays published until its last assertion has expired. */
  retiredAt: number | null;
};

/** The whole keyring is one row, so a rotation is a single compare-and-set on `version`. */
export type KeyringRow = {
  id: string;
  version: number;
  keys: StoredKey[];
};

export const keyrings = table<KeyringRow>({
  name: 'keyrings',
  key: 'id',
  columns: { id: 'text', version: 'integer', keys: 'json' },
});
