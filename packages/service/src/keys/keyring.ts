import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { JsonValue, Store } from '../store/contract.ts';
import { keyrings, type KeyringRow, type StoredKey } from '../schema.ts';
import { algorithms, jwkThumbprint, type SigningAlgorithm } from './jwt.ts';

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: Record<string, JsonValue>;
  createdAt: number;
  retiredAt: number | null;
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
}


/**
 * The service's signing keys, persisted in the store so that every replica and every restart signs
 * with the same keys. The newest unretired key signs; retired keys stay published (and accepted)
 * until whatever they signed has expired. The keyring row is replaced by compare-and-set on
 * `version`, so two replicas rotating at once cannot lose a key.
 */
export class Keyring {
  private keys: SigningKey[] = [];
  private version = 0;
  private jwksCache: string | undefined;
  private reloading: Promise<void> | undefined;

  private readonly id: string;

  private constructor(private readonly options: KeyringOptions) {
    this.id = options.id ?? 'service';
  }

  static async open(options: KeyringOptions): Promise<Keyring> {
    const keyring = new Keyring(options);
    if (!(await options.store.get(keyrings, keyring.id))) {
      // Replicas starting together on an empty store race here; insertIfAbsent lets exactly one win.
      const created = await options.store.insertIfAbsent(keyrings, {
        id: keyring.id,
        version: 1,
        keys: [generateKey(options.algorithm, options.clock())],
      });
      if (created) options.logger.info('generated a new signing key', { algorithm: options.algorithm });
    }
    await keyring.reload();
    return keyring;
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
      const next = generateKey(this.options.algorithm, now);
      const swapped = await this.options.store.update(keyrings, this.id, { version: row.version + 1, keys: [next, ...kept] }, { version: row.version });
      if (swapped) {
        this.options.logger.info('rotated the signing key', { kid: next.kid });
        await this.readKeys();
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

  private async readKeys(): Promise<void> {
    const row: KeyringRow | undefined = await this.options.store.get(keyrings, this.id);
    if (!row || row.version === this.version) return;
    this.keys = row.keys.map(loadKey);
    this.version = row.version;
    this.jwksCache = undefined;
    if (!this.keys.some((k) => k.retiredAt === null && k.alg === this.options.algorithm)) {
      // The configured algorithm changed since the keys were made: rotate to a key of the new kind.
      await this.rotate();
    }
  }

  private isPublished(key: SigningKey, now: number): boolean {
    return key.retiredAt === null || key.retiredAt + this.options.publishAfterRetirementMs > now;
  }
}

function generateKey(alg: SigningAlgorithm, now: number): StoredKey {
  const spec = algorithms[alg];
  const { privateKey, publicKey } =
    spec.keyType === 'ec' ? generateKeyPairSync('ec', { namedCurve: spec.namedCurve! }) : generateKeyPairSync('ed25519');
  const publicJwk = publicKey.export({ format: 'jwk' }) as Record<string, JsonValue>;
  return {
    kid: jwkThumbprint(publicJwk),
    alg,
    privateJwk: privateKey.export({ format: 'jwk' }) as Record<string, JsonValue>,
    publicJwk,
    createdAt: now,
    retiredAt: null,
  };
}

function loadKey(stored: StoredKey): SigningKey {
  return {
    kid: stored.kid,
    alg: stored.alg as SigningAlgorithm,
    privateKey: createPrivateKey({ key: stored.privateJwk as JsonWebKey, format: 'jwk' }),
    publicKey: createPublicKey({ key: stored.publicJwk as JsonWebKey, format: 'jwk' }),
    publicJwk: stored.publicJwk,
    createdAt: stored.createdAt,
    retiredAt: stored.retiredAt,
  };
}
