import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { JsonValue, Store, Subscription } from '../store/contract.ts';
import { keyrings, type KeyringRow, type StoredKey } from './keyring-table.ts';
import { algorithms, jwkThumbprint, type SigningAlgorithm } from './jwt.ts';
import { KEY_ENCRYPTION_KEY_ENV, KeyEncryptionError, type KeyEncryptionKey, type KeyWrapContext } from './key-encryption.ts';

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: Record<string, JsonValue>;
  createdAt: number;
  retiredAt: number | null;
}

/** A key as an operator sees it. */
export interface KeyDescription {
  kid: string;
  alg: SigningAlgorithm;
  createdAt: number;
  retiredAt: number | null;
  /** The key that signs now. */
  signing: boolean;
  /** In the JWKS: active, or retired less than the longest lifetime of what it signed ago. */
  published: boolean;
}

export interface KeyringOptions {
  store: Store;
  algorithm: SigningAlgorithm;
  clock: () => number;
  logger: Logger;
  /** How long a retired key stays published: the longest lifetime of anything it signed, plus skew. */
  publishAfterRetirementMs: number;
  rotateAfterMs: number;
  /** The keyring's row: one store may hold several keyrings (a service's and a provider's). Default 'service'. */
  id?: string;
  /**
   * Key-encryption keys, newest first (see key-encryption.ts): the first wraps the private keys, every
   * one unwraps, and keys in plaintext or wrapped by an older one are re-wrapped by the first when the
   * keyring is read. Empty or absent: private keys are stored in plaintext, and a keyring whose keys
   * are wrapped cannot be opened.
   */
  keyEncryptionKeys?: readonly KeyEncryptionKey[];
}


/**
 * The service's signing keys, persisted in the store so that every replica and every restart signs
 * with the same keys. The newest unretired key signs; retired keys stay published (and accepted)
 * until whatever they signed has expired. The keyring row is replaced by compare-and-set on
 * `version`, so two replicas rotating at once cannot lose a key. With key-encryption keys, private
 * keys are stored only wrapped (AES-256-GCM or a KMS), bound to the keyring's id and their kid.
 * On a store shared by replicas (one with `broadcast`/`subscribe`), a rotation is announced on the
 * topic `keys:<id>` and every replica re-reads the keyring on receipt (and after its channel was lost).
 */
export class Keyring {
  private keys: SigningKey[] = [];
  private version = 0;
  private jwksCache: string | undefined;
  private reloading: Promise<void> | undefined;
  private subscription: Subscription | undefined;

  private readonly id: string;
  private readonly keks: readonly KeyEncryptionKey[];

  private constructor(private readonly options: KeyringOptions) {
    this.id = options.id ?? 'service';
    this.keks = options.keyEncryptionKeys ?? [];
  }

  /**
   * Reads the keyring (making its first key when there is none) and unwraps its private keys.
   * Rejects with a KeyEncryptionError when they are wrapped and no configured KEK unwraps them.
   */
  static async open(options: KeyringOptions): Promise<Keyring> {
    const keyring = new Keyring(options);
    if (!(await options.store.get(keyrings, keyring.id))) {
      // Replicas starting together on an empty store race here; insertIfAbsent lets exactly one win.
      const created = await options.store.insertIfAbsent(keyrings, {
        id: keyring.id,
        version: 1,
        keys: [await keyring.generateKey(options.clock())],
      });
      if (created) options.logger.info('generated a new signing key', { algorithm: options.algorithm, keyring: keyring.id, kek: keyring.keks[0]?.id ?? null });
    }
    // At open, keys wrapped by an older KEK are re-wrapped by the current one (later reads only wrap
    // plaintext keys, so replicas whose KEK lists are mid-rollout cannot re-wrap back and forth).
    await keyring.readKeys(true);
    keyring.subscription = options.store.subscribe?.(keyring.topic(), () => {
      // A re-read already in flight may have started before the rotation committed: read once more after it.
      const inFlight = keyring.reloading;
      (inFlight ? inFlight.then(() => keyring.reload(), () => keyring.reload()) : keyring.reload()).catch((error: unknown) => options.logger.error('could not re-read the keyring after another replica changed it', { keyring: keyring.id, error: String(error) }));
    });
    return keyring;
  }

  /** Stops listening for other replicas' rotations. */
  close(): void {
    this.subscription?.close();
  }

  /** The key that signs now. */
  active(): SigningKey {
    const key = this.keys.find((k) => k.retiredAt === null && k.alg === this.options.algorithm);
    if (!key) throw new Error('the keyring has no active key');
    return key;
  }

  /** A published key by `kid`; re-reads the store once when the kid is unknown (another replica rotated). */
  async find(kid: string): Promise<SigningKey | undefined> {
    const now = this.options.clock();
    let key = this.keys.find((k) => k.kid === kid);
    if (!key) {
      await this.reload();
      key = this.keys.find((k) => k.kid === kid);
    }
    return key && this.isPublished(key, now) ? key : undefined;
  }

  /** Every key kept, newest first, without private parts: for an operator's view. */
  list(): KeyDescription[] {
    const now = this.options.clock();
    const signing = this.active();
    return this.keys.map((k) => ({ kid: k.kid, alg: k.alg, createdAt: k.createdAt, retiredAt: k.retiredAt, signing: k === signing, published: this.isPublished(k, now) }));
  }

  /** The JWK Set document, as a JSON string (cached until the keyring changes). */
  jwks(): string {
    const now = this.options.clock();
    this.jwksCache ??= JSON.stringify({
      keys: this.keys.filter((k) => this.isPublished(k, now)).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })),
    });
    return this.jwksCache;
  }

  /** Makes a new key the signing key; the previous one stays published until its assertions expire. */
  async rotate(): Promise<SigningKey> {
    for (;;) {
      const row = await this.options.store.get(keyrings, this.id);
      if (!row) throw new Error('the keyring row is missing');
      const now = this.options.clock();
      const kept = row.keys
        .filter((k) => k.retiredAt === null || k.retiredAt + this.options.publishAfterRetirementMs > now)
        .map((k) => (k.retiredAt === null ? { ...k, retiredAt: now } : k));
      const next = await this.generateKey(now);
      const swapped = await this.options.store.update(keyrings, this.id, { version: row.version + 1, keys: [next, ...kept] }, { version: row.version });
      if (swapped) {
        this.options.logger.info('rotated the signing key', { kid: next.kid });
        await this.readKeys();
        await this.options.store.broadcast?.(this.topic(), String(row.version + 1)).catch((error: unknown) => {
          // The rotation stands; other replicas find the new key on their next maintenance or unknown kid.
          this.options.logger.error('could not tell the other replicas about a key rotation', { keyring: this.id, error: String(error) });
        });
        return this.active();
      }
    }
  }

  /** Periodic upkeep: picks up other replicas' rotations and rotates when the active key is old. */
  async maintain(): Promise<void> {
    this.jwksCache = undefined; // a retired key may have just left its publication window
    await this.reload();
    if (this.options.clock() - this.active().createdAt >= this.options.rotateAfterMs) await this.rotate();
  }

  /** Re-reads the keyring; concurrent callers share one read. */
  reload(): Promise<void> {
    this.reloading ??= this.readKeys().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async readKeys(rewrapOlderKeks = false): Promise<void> {
    for (;;) {
      const row: KeyringRow | undefined = await this.options.store.get(keyrings, this.id);
      if (!row || row.version === this.version) return;
      const loaded = await Promise.all(row.keys.map((stored) => this.loadKey(stored)));
      this.keys = loaded;
      this.jwksCache = undefined;
      if (await this.rewrap(row, loaded, rewrapOlderKeks)) continue; // read again what this (or another replica's) re-wrap wrote
      this.version = row.version;
      if (!this.keys.some((k) => k.retiredAt === null && k.alg === this.options.algorithm)) {
        // The configured algorithm changed since the keys were made: rotate to a key of the new kind.
        await this.rotate();
      }
      return;
    }
  }

  /**
   * With a KEK configured, keys stored in plaintext (and, when `olderKeks`, keys wrapped by another
   * KEK) are wrapped by the current one, by compare-and-set on the version. False when none needed it.
   */
  private async rewrap(row: KeyringRow, loaded: SigningKey[], olderKeks: boolean): Promise<boolean> {
    const current = this.keks[0];
    if (!current) return false;
    const stale = row.keys.filter((k) => !k.wrappedPrivateKey || (olderKeks && k.wrappedPrivateKey.kek !== current.id));
    if (stale.length === 0) return false;
    const keys = await Promise.all(row.keys.map((stored, i) => (stale.includes(stored) ? this.seal(withoutPrivate(stored), loaded[i]!.privateKey) : stored)));
    const swapped = await this.options.store.update(keyrings, this.id, { version: row.version + 1, keys }, { version: row.version });
    if (swapped) {
      const plaintext = stale.filter((k) => !k.wrappedPrivateKey).length;
      const fields = { keyring: this.id, kek: current.id, fromPlaintext: plaintext, fromOlderKeks: stale.length - plaintext };
      if (plaintext > 0) {
        // The row no longer holds them in plaintext, but backups (and free pages of the database file) made before may.
        this.options.logger.warn('encrypted private signing keys that were stored in plaintext; copies of the database made before still hold them: rotate the keys to retire them', fields);
      } else {
        this.options.logger.info('re-wrapped private signing keys with the current key-encryption key', fields);
      }
    }
    return true;
  }

  /** A new key pair, its private part wrapped by the current KEK (or in plaintext without one). */
  private async generateKey(now: number): Promise<StoredKey> {
    const alg = this.options.algorithm;
    const spec = algorithms[alg];
    const { privateKey, publicKey } =
      spec.keyType === 'ec' ? generateKeyPairSync('ec', { namedCurve: spec.namedCurve! }) : generateKeyPairSync('ed25519');
    const publicJwk = publicKey.export({ format: 'jwk' }) as Record<string, JsonValue>;
    return this.seal({ kid: jwkThumbprint(publicJwk), alg, publicJwk, createdAt: now, retiredAt: null }, privateKey);
  }

  /** The stored form of a key: the private key wrapped by the current KEK, or as a plaintext JWK without one. */
  private async seal(key: StoredKey, privateKey: KeyObject): Promise<StoredKey> {
    const kek = this.keks[0];
    if (!kek) return { ...key, privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, JsonValue> };
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    try {
      const wrapped = await kek.wrap(der, this.context(kek.id, key.kid));
      return { ...key, wrappedPrivateKey: { kek: kek.id, data: Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength).toString('base64url') } };
    } finally {
      der.fill(0);
    }
  }

  /** The in-memory key; a kid already loaded is not unwrapped again (its private key never changes). */
  private async loadKey(stored: StoredKey): Promise<SigningKey> {
    const known = this.keys.find((k) => k.kid === stored.kid);
    const privateKey = known?.privateKey ?? (await this.unsealPrivateKey(stored));
    return {
      kid: stored.kid,
      alg: stored.alg as SigningAlgorithm,
      privateKey,
      publicKey: createPublicKey({ key: stored.publicJwk as JsonWebKey, format: 'jwk' }),
      publicJwk: stored.publicJwk,
      createdAt: stored.createdAt,
      retiredAt: stored.retiredAt,
    };
  }

  private async unsealPrivateKey(stored: StoredKey): Promise<KeyObject> {
    let privateKey: KeyObject;
    if (stored.wrappedPrivateKey) {
      const { kek: kekId, data } = stored.wrappedPrivateKey;
      const kek = this.keks.find((k) => k.id === kekId);
      if (!kek) {
        throw new KeyEncryptionError(
          this.keks.length === 0
            ? `the ${this.id} keyring's private keys are encrypted with the key-encryption key ${kekId}, and no key-encryption key is configured: ` +
                `set ${KEY_ENCRYPTION_KEY_ENV} (or the keyEncryption option) to the key they were encrypted with`
            : `the ${this.id} keyring's key ${stored.kid} is encrypted with the key-encryption key ${kekId}, which is not among the configured ones (${this.keks.map((k) => k.id).join(', ')}): ` +
                `add it to ${KEY_ENCRYPTION_KEY_ENV} after the current key (newest first, comma-separated) or to keyEncryption.keys`,
        );
      }
      let der: Uint8Array;
      try {
        der = await kek.unwrap(Buffer.from(data, 'base64url'), this.context(kekId, stored.kid));
      } catch (error) {
        throw new KeyEncryptionError(
          `the key-encryption key ${kekId} does not decrypt the ${this.id} keyring's key ${stored.kid}: ${KEY_ENCRYPTION_KEY_ENV} (or keyEncryption.keys) holds a different key under that id, or the stored key was altered or moved from another keyring`,
          { cause: error },
        );
      }
      try {
        privateKey = createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: 'der', type: 'pkcs8' });
      } catch (error) {
        throw new KeyEncryptionError(`the ${this.id} keyring's key ${stored.kid} decrypted to something that is not a private key`, { cause: error });
      } finally {
        der.fill(0);
      }
    } else if (stored.privateJwk) {
      privateKey = createPrivateKey({ key: stored.privateJwk as JsonWebKey, format: 'jwk' });
    } else {
      throw new KeyEncryptionError(`the ${this.id} keyring's key ${stored.kid} has no private key`);
    }
    // Whatever was decrypted must be the private half of the published key.
    if (jwkThumbprint(createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>) !== stored.kid) {
      throw new KeyEncryptionError(`the ${this.id} keyring's key ${stored.kid}: the private key does not belong to that kid`);
    }
    return privateKey;
  }

  private topic(): string {
    return `keys:${this.id}`;
  }

  private context(kekId: string, kid: string): KeyWrapContext {
    return { kekId, keyringId: this.id, kid };
  }

  private isPublished(key: SigningKey, now: number): boolean {
    return key.retiredAt === null || key.retiredAt + this.options.publishAfterRetirementMs > now;
  }
}

/** The key's public part and times, without its private key in either form. */
function withoutPrivate(stored: StoredKey): StoredKey {
  const { privateJwk: _plaintext, wrappedPrivateKey: _wrapped, ...rest } = stored;
  return rest;
}
