import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';

/**
 * Private signing keys at rest (issue 10). A keyring's private keys are stored encrypted by a
 * key-encryption key (KEK) the operator holds outside the database: a copy of the database alone
 * cannot sign. The KEK is either a 32-byte AES-256-GCM key (`AUTHMD_KEY_ENCRYPTION_KEY`, or
 * `localKeyEncryptionKey`) or a callback into a KMS (`KeyEncryptionKey`). Several KEKs may be known at
 * once (rotation): the first wraps, every one of them unwraps, and a keyring opened with a newer KEK
 * first re-wraps what an older one wrapped.
 */

/** The environment variable the service and the provider read their KEKs from. */
export const KEY_ENCRYPTION_KEY_ENV = 'AUTHMD_KEY_ENCRYPTION_KEY';

/** Prints a new KEK in the format `AUTHMD_KEY_ENCRYPTION_KEY` takes. */
export const GENERATE_KEY_ENCRYPTION_KEY = `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`;

/** What a wrapped key belongs to. A KEK must bind its ciphertext to all three (AAD, KMS encryption context). */
export interface KeyWrapContext {
  /** The id of the KEK doing the wrapping (its `id`). */
  kekId: string;
  /** The keyring's row: 'service', 'provider', … */
  keyringId: string;
  /** The signing key's `kid`. */
  kid: string;
}

/**
 * A key-encryption key. `localKeyEncryptionKey` is one; a KMS is another: implement `wrap` and
 * `unwrap` with its encrypt and decrypt calls, passing `context` as the encryption context (or
 * `keyWrapAad(context)` as additional authenticated data), so that a wrapped key taken to another
 * keyring or another kid does not decrypt.
 */
export interface KeyEncryptionKey {
  /**
   * Stored next to every key it wraps, so that the right KEK is asked to unwrap it: stable, unique
   * among the KEKs you configure, not secret (for a KMS: the key's ARN or name and version).
   */
  readonly id: string;
  /** Encrypts a private key (PKCS #8 DER). What it returns is stored as is (base64url). */
  wrap(plaintext: Uint8Array, context: KeyWrapContext): Promise<Uint8Array>;
  /** Decrypts what `wrap` returned for the same context; rejects when it cannot (wrong key, altered or moved). */
  unwrap(ciphertext: Uint8Array, context: KeyWrapContext): Promise<Uint8Array>;
}

/** The `keyEncryption` option of `createService` and `createProvider`. */
export interface KeyEncryptionOptions {
  /**
   * The KEKs, newest first: the first wraps new keys and re-wraps keys wrapped by the others; every
   * one unwraps. Default: the keys in `AUTHMD_KEY_ENCRYPTION_KEY`. An empty list means none (the
   * environment is not read).
   */
  keys?: readonly KeyEncryptionKey[];
  /**
   * Without any KEK, private keys are stored in plaintext: with a warning at start, and not at all
   * when NODE_ENV=production unless this is true.
   */
  allowPlaintext?: boolean;
}

/** The KEK is missing, malformed or wrong, or a wrapped key does not decrypt. The message says what to set. */
export class KeyEncryptionError extends Error {
  override readonly name = 'KeyEncryptionError';
}

const AAD_LABEL = 'authmd.signing-key.v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The additional authenticated data of a wrapped key: the KEK's id, the keyring and the kid. */
export function keyWrapAad(context: KeyWrapContext): Buffer {
  return Buffer.from(JSON.stringify([AAD_LABEL, context.kekId, context.keyringId, context.kid]), 'utf8');
}

/**
 * A KEK held in memory: AES-256-GCM with a random 96-bit IV per wrap, `keyWrapAad(context)` as AAD.
 * The wrapped form is IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes). The id defaults to a fingerprint
 * of the key (a truncated SHA-256, which reveals nothing usable about it), so the same key always
 * has the same id and a different key a different one.
 */
export function localKeyEncryptionKey(secret: Uint8Array, id: string = keyFingerprint(secret)): KeyEncryptionKey {
  if (secret.length !== 32) throw new KeyEncryptionError(`a key-encryption key is 32 bytes (AES-256), not ${secret.length}; generate one with: ${GENERATE_KEY_ENCRYPTION_KEY}`);
  checkKekId(id);
  const key = Buffer.from(secret); // a copy: the caller may wipe theirs
  return {
    id,
    async wrap(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(keyWrapAad(context));
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return Buffer.concat([iv, body, cipher.getAuthTag()]);
    },
    async unwrap(ciphertext, context) {
      if (ciphertext.length <= IV_BYTES + TAG_BYTES) throw new KeyEncryptionError('the wrapped key is too short');
      const wrapped = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
      const decipher = createDecipheriv('aes-256-gcm', key, wrapped.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(keyWrapAad(context));
      decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
      return Buffer.concat([decipher.update(wrapped.subarray(IV_BYTES, wrapped.length - TAG_BYTES)), decipher.final()]);
    },
  };
}

function keyFingerprint(secret: Uint8Array): string {
  return `local-${createHash('sha256').update('authmd key-encryption key id\0').update(secret).digest('base64url').slice(0, 16)}`;
}

function checkKekId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > 512) throw new KeyEncryptionError('a key-encryption key needs an id of 1 to 512 characters');
}

/**
 * Parses the `AUTHMD_KEY_ENCRYPTION_KEY` format: one or more 32-byte keys, comma-separated, newest
 * first, each in base64url (43 characters), base64 (44 with the `=`) or hex (64 characters). The
 * message of an error names the variable and how to generate a key, never the value.
 */
export function parseKeyEncryptionKeys(value: string, name: string = KEY_ENCRYPTION_KEY_ENV): KeyEncryptionKey[] {
  const entries = value.split(',').map((entry) => entry.trim());
  const keys = entries.map((entry, i) => {
    const bytes = decodeKey(entry);
    if (!bytes) {
      const which = entries.length > 1 ? `entry ${i + 1} of ${name}` : name;
      throw new KeyEncryptionError(
        `${which} is not a 32-byte key in base64url, base64 or hex (a list is comma-separated, newest first). Generate one with: ${GENERATE_KEY_ENCRYPTION_KEY}`,
      );
    }
    try {
      return localKeyEncryptionKey(bytes);
    } finally {
      bytes.fill(0);
    }
  });
  checkDistinct(keys, name);
  return keys;
}

function decodeKey(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9_-]{43}$/.test(text)) return Buffer.from(text, 'base64url');
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return Buffer.from(text, 'base64');
  return undefined;
}

function checkDistinct(keys: readonly KeyEncryptionKey[], where: string): void {
  const seen = new Set<string>();
  for (const key of keys) {
    checkKekId(key.id);
    if (seen.has(key.id)) throw new KeyEncryptionError(`${where}: the key-encryption key ${key.id} is listed twice`);
    seen.add(key.id);
  }
}

export interface ResolveKeyEncryptionInput {
  options: KeyEncryptionOptions | undefined;
  /** Where `AUTHMD_KEY_ENCRYPTION_KEY` and NODE_ENV are read. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Who is starting, for the messages: 'service', 'agent provider'. */
  what: string;
}

/**
 * The KEKs a service or provider starts with: `options.keys`, else `AUTHMD_KEY_ENCRYPTION_KEY`. With
 * none, it warns that private keys will be stored in plaintext, and refuses (throws) when
 * NODE_ENV=production unless `allowPlaintext` is set.
 */
export function resolveKeyEncryption({ options, env, logger, what }: ResolveKeyEncryptionInput): KeyEncryptionKey[] {
  const fromEnv = env[KEY_ENCRYPTION_KEY_ENV]?.trim();
  const keys = options?.keys ? [...options.keys] : fromEnv ? parseKeyEncryptionKeys(fromEnv) : [];
  checkDistinct(keys, 'keyEncryption.keys');
  if (keys.length > 0) return keys;
  if (options?.allowPlaintext) {
    logger.warn(`the ${what}'s private signing keys are stored unencrypted (keyEncryption.allowPlaintext): anyone with a copy of the database can sign as the ${what}`);
    return keys;
  }
  if (env.NODE_ENV === 'production') {
    throw new KeyEncryptionError(
      `no key-encryption key: the ${what}'s private signing keys would be stored unencrypted, and anyone with a copy of the database could sign as the ${what}. ` +
        `Set ${KEY_ENCRYPTION_KEY_ENV} (generate a key with: ${GENERATE_KEY_ENCRYPTION_KEY}), or pass keyEncryption.keys (a KMS), ` +
        'or keyEncryption.allowPlaintext: true to accept plaintext keys.',
    );
  }
  logger.warn(
    `no key-encryption key: the ${what}'s private signing keys are stored UNENCRYPTED in the database, and anyone with a copy of it can sign as the ${what}. ` +
      `Set ${KEY_ENCRYPTION_KEY_ENV} (generate a key with: ${GENERATE_KEY_ENCRYPTION_KEY}); keys stored until then are encrypted at the next start. ` +
      'With NODE_ENV=production this refuses to start.',
  );
  return keys;
}
