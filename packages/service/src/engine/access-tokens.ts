import type { Logger } from '@authmd/core';
import type { Store, StoreOps, Subscription } from '@authmd/core/store';
import { prefixes } from '@authmd/protocol';
import { accessTokens, type AccessTokenRow } from '../schema.ts';
import { secretKey, timeOrderedSecret, type RandomSource } from '../secrets.ts';
import { TOKENS_TOPIC } from '../topics.ts';

export interface IssuedAccessToken {
  accessToken: string;
  row: AccessTokenRow;
}

interface CachedToken {
  row: AccessTokenRow;
  cachedUntil: number;
}

const MAX_CACHED = 50_000;

/** Not revoked, and not expired (an API key has no expiry). */
function isLive(row: AccessTokenRow, now: number): boolean {
  return row.revoked_at === null && (row.expires_at === null || row.expires_at > now);
}

/**
 * Opaque access tokens, stored as SHA-256 hashes. Validation is a lookup by hash, served from a
 * short-lived in-memory cache. Every revocation made through this object clears the cache before
 * the revoking call returns, so a revoked token is refused on the very next request. With a store
 * shared by several replicas (one that has `broadcast`/`subscribe`), the revocation is announced on
 * the `tokens` topic and every replica clears its cache on receipt; while a replica's channel is not
 * live (connecting, or lost) it does not use its cache at all, since it could be missing revocations.
 */
export class AccessTokens {
  private readonly cache = new Map<string, CachedToken>();
  /** Moves on at every revocation; a lookup that straddles one does not cache what it read. */
  private epoch = 0;
  private readonly subscription: Subscription | undefined;

  constructor(
    private readonly store: Store,
    private readonly random: RandomSource,
    private readonly clock: () => number,
    private readonly cacheMs: number,
    private readonly logger?: Logger,
  ) {
    // Another replica's revocation, or (undefined) revocations this replica may have missed.
    this.subscription = store.subscribe?.(TOKENS_TOPIC, () => this.forgetLocal());
  }

  /** Stops listening for other replicas' revocations. */
  close(): void {
    this.subscription?.close();
  }

  /**
   * An access token of `lifetimeMs`, or (v0.1) an API key: the same kind of row, without expiry,
   * whose scopes follow its registration's claim (`upgradeApiKeys`).
   */
  async issue(
    tx: StoreOps,
    grant: { registrationId: string; userId: string | null; scopes: string[]; resource: string } & ({ lifetimeMs: number } | { apiKey: true }),
  ): Promise<IssuedAccessToken> {
    const apiKey = 'apiKey' in grant;
    const now = this.clock();
    const accessToken = timeOrderedSecret(this.random, apiKey ? prefixes.apiKey : prefixes.accessToken, now);
    const row: AccessTokenRow = {
      token_hash: secretKey(accessToken),
      registration_id: grant.registrationId,
      user_id: grant.userId,
      scope: grant.scopes.join(' '),
      resource: grant.resource,
      issued_at: now,
      expires_at: apiKey ? null : now + grant.lifetimeMs,
      revoked_at: null,
      kind: apiKey ? 'api_key' : null,
    };
    await tx.append(accessTokens, row);
    return { accessToken, row };
  }

  /** The live (unrevoked, unexpired) token row for a presented token, or undefined. */
  async validate(accessToken: string): Promise<AccessTokenRow | undefined> {
    const hash = secretKey(accessToken);
    const now = this.clock();
    let row: AccessTokenRow | undefined;
    const trusted = this.subscription?.live ?? true;
    const cached = trusted ? this.cache.get(hash) : undefined;
    if (cached && cached.cachedUntil > now) {
      row = cached.row;
    } else {
      const epoch = this.epoch;
      row = await this.store.get(accessTokens, hash);
      if (row && this.cacheMs > 0 && trusted && epoch === this.epoch) this.remember(hash, row, now);
    }
    if (!row || !isLive(row, now)) return undefined;
    return row;
  }

  /**
   * The live token row read from the store, bypassing the cache: for introspection, whose answer a
   * remote resource server caches itself (stacking two caches would add their windows up).
   */
  async lookup(accessToken: string): Promise<AccessTokenRow | undefined> {
    const row = await this.store.get(accessTokens, secretKey(accessToken));
    if (!row || !isLive(row, this.clock())) return undefined;
    return row;
  }

  /** Revokes one token by its value. Returns its row when it was live. */
  async revoke(tx: StoreOps, accessToken: string): Promise<AccessTokenRow | undefined> {
    const hash = secretKey(accessToken);
    const row = await tx.get(accessTokens, hash);
    if (!row || row.revoked_at !== null) return undefined;
    const revoked = await tx.update(accessTokens, hash, { revoked_at: this.clock() }, { revoked_at: null });
    return revoked ? row : undefined;
  }

  /** Revokes every live token of a registration (API keys included); returns how many. */
  revokeForRegistration(tx: StoreOps, registrationId: string): Promise<number> {
    return tx.updateWhere(accessTokens, 'registration_id', registrationId, { revoked_at: this.clock() }, { revoked_at: null });
  }

  /** Revokes a registration's live access tokens but not its API keys (a claim: the keys are upgraded instead). */
  revokeAccessTokensOf(tx: StoreOps, registrationId: string): Promise<number> {
    return tx.updateWhere(accessTokens, 'registration_id', registrationId, { revoked_at: this.clock() }, { revoked_at: null, kind: null });
  }

  /** Gives a registration's live API keys new scopes (v0.1: an anonymous claim upgrades the key in place); returns how many. */
  upgradeApiKeys(tx: StoreOps, registrationId: string, update: { scopes: string[]; userId: string }): Promise<number> {
    return tx.updateWhere(accessTokens, 'registration_id', registrationId, { scope: update.scopes.join(' '), user_id: update.userId }, { revoked_at: null, kind: 'api_key' });
  }

  /**
   * Forgets every cached validation, here and (through the store's channel) on every replica. Called
   * after any revocation commits: revocations are rare, so clearing everything is cheaper than
   * tracking which cached tokens belong to what. This replica's cache is cleared before the first
   * await; the promise resolves once the other replicas have been sent the message (see
   * `Store.broadcast`, bounded). A message that cannot be sent is logged, not thrown: the revocation
   * has committed, and other replicas' cached copies still end within `tokenCacheMs`.
   */
  async forgetCached(): Promise<void> {
    this.forgetLocal();
    if (!this.store.broadcast) return;
    try {
      await this.store.broadcast(TOKENS_TOPIC, 'revoked');
    } catch (error) {
      this.logger?.error('could not tell the other replicas about a revocation; their cached validations end within tokenCacheMs', { error: String(error) });
    }
  }

  /** Forgets this replica's cached validations; a lookup in flight does not cache what it read. */
  private forgetLocal(): void {
    this.epoch += 1;
    this.cache.clear();
  }

  private remember(hash: string, row: AccessTokenRow, now: number): void {
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(hash, { row, cachedUntil: Math.min(now + this.cacheMs, row.expires_at ?? Infinity) });
  }
}
