import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import * as errors from 'jose/errors';
import type { Logger } from '@authmd/core';
import type { Fetcher } from '@authmd/core/fetch';
import type { Store, Subscription } from '@authmd/core/store';
import type { TrustedIssuer } from '../config.ts';
import { JWKS_TOPIC } from '../topics.ts';
import { CimdResolver, type ClientMetadata } from './cimd.ts';
import { JwksCache, type JsonWebKeySet } from './jwks-cache.ts';
import { verifyProviderJwt } from './jws-verify.ts';

const METADATA_TTL_MS = 3_600_000;

/**
 * The providers this service trusts, and their keys. An issuer that is not on the list is refused
 * before anything is fetched; for one that is, keys come from the configured `jwksUri`, else from
 * the `jwks_uri` of its RFC 8414 metadata (whose `issuer` must match exactly), else from
 * `<issuer>/.well-known/jwks.json`. Every fetch goes through the SSRF-safe fetcher.
 */
export class TrustList {
  private readonly jwks: JwksCache;
  private readonly cimd: CimdResolver;
  private readonly jwksUris = new Map<string, { uri: string; until: number }>();
  private readonly subscription: Subscription | undefined;
  /** Tells this replica's own announcements from the others'. */
  private readonly replicaId = randomUUID();

  /**
   * With a store shared by replicas (`channel` with `broadcast`/`subscribe`), a key set that changed
   * when one replica fetched it is announced, and every replica drops its copy: a key the provider
   * withdrew stops verifying everywhere once any replica has seen it gone, not when each replica's
   * copy happens to expire.
   */
  constructor(
    private readonly issuers: Map<string, TrustedIssuer>,
    private readonly options: { fetcher: Fetcher; clock: () => number; allowLoopback: boolean; logger: Logger; channel?: Pick<Store, 'broadcast' | 'subscribe'> },
  ) {
    this.jwks = new JwksCache({
      fetcher: options.fetcher,
      clock: options.clock,
      allowLoopback: options.allowLoopback,
      onChanged: (uri) => this.announceChanged(uri),
    });
    this.cimd = new CimdResolver({ fetcher: options.fetcher, clock: options.clock, allowLoopback: options.allowLoopback });
    this.subscription = options.channel?.subscribe?.(JWKS_TOPIC, (message) => this.heard(message));
  }

  /** Stops listening for other replicas' key-set announcements. */
  close(): void {
    this.subscription?.close();
  }

  private announceChanged(jwksUri: string): void {
    const sent = this.options.channel?.broadcast?.(JWKS_TOPIC, JSON.stringify({ from: this.replicaId, jwksUri }));
    sent?.catch((error: unknown) => {
      this.options.logger.warn('could not tell the other replicas that a provider key set changed; their copies end when they expire', { jwksUri, error: String(error) });
    });
  }

  /** Another replica's announcement, or (undefined) announcements this replica may have missed. */
  private heard(message: string | undefined): void {
    if (message === undefined) return this.jwks.forget();
    let announced: { from?: unknown; jwksUri?: unknown };
    try {
      announced = JSON.parse(message) as typeof announced;
    } catch {
      return this.jwks.forget();
    }
    if (announced.from === this.replicaId) return;
    if (typeof announced.jwksUri === 'string') this.jwks.forget(announced.jwksUri);
    else this.jwks.forget();
  }

  get size(): number {
    return this.issuers.size;
  }

  get(issuer: unknown): TrustedIssuer | undefined {
    return typeof issuer === 'string' ? this.issuers.get(issuer) : undefined;
  }

  displayNames(): string[] {
    return [...this.issuers.values()].map((entry) => entry.displayName);
  }

  entries(): TrustedIssuer[] {
    return [...this.issuers.values()];
  }

  /**
   * The issuer's key set as the service uses it: fetched when this process holds none (or a stale
   * one), with the kids it lists, where it came from, and until when it is kept; or why it cannot be had.
   */
  async keyState(entry: TrustedIssuer): Promise<{ jwksUri?: string; kids: string[]; freshUntil?: number; error?: string }> {
    try {
      const { uri } = await this.keys(entry);
      const cached = this.jwks.cached(uri);
      return { jwksUri: uri, kids: (cached?.keys.keys ?? []).map((key) => String(key.kid ?? '')), freshUntil: cached?.freshUntil };
    } catch (error) {
      return { kids: [], error: String((error as Error)?.message ?? error).split('\n', 1)[0] };
    }
  }

  /** The issuer's key set and where it came from. */
  private async keys(entry: TrustedIssuer): Promise<{ uri: string; keys: JsonWebKeySet }> {
    const uri = await this.jwksUri(entry);
    return { uri, keys: await this.jwks.get(uri) };
  }

  /**
   * Verifies a JWT of this issuer with its published keys (jws-verify.ts: signature, `alg`
   * allow-list, `typ`, `iss`, time claims). When no key matches the `kid`, the key set is fetched
   * once more (at most once per cooldown) and the JWT tried again. jose's error classes, and
   * `JwksError` when the keys cannot be fetched, reach the caller, which decides what they mean on
   * its endpoint.
   */
  async verify(
    entry: TrustedIssuer,
    token: string,
    options: { typ: string; requiredClaims: string[]; clockToleranceSeconds: number; now: number },
  ): Promise<{ payload: JWTPayload; jwksUri: string }> {
    const verifyOptions = { ...options, algorithms: entry.algorithms, issuer: entry.issuer };
    const { uri, keys } = await this.keys(entry);
    try {
      return { payload: await verifyProviderJwt(token, keys, verifyOptions), jwksUri: uri };
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      const refreshed = await this.jwks.refreshForUnknownKid(uri);
      if (!refreshed) throw error;
      return { payload: await verifyProviderJwt(token, refreshed, verifyOptions), jwksUri: uri };
    }
  }

  clientMetadata(clientId: string): Promise<ClientMetadata> {
    return this.cimd.resolve(clientId);
  }

  private async jwksUri(entry: TrustedIssuer): Promise<string> {
    if (entry.jwksUri) return entry.jwksUri;
    const now = this.options.clock();
    const known = this.jwksUris.get(entry.issuer);
    if (known && known.until > now) return known.uri;
    const uri = (await this.discoverJwksUri(entry.issuer)) ?? `${entry.issuer}/.well-known/jwks.json`;
    this.jwksUris.set(entry.issuer, { uri, until: now + METADATA_TTL_MS });
    return uri;
  }

  private async discoverJwksUri(issuer: string): Promise<string | undefined> {
    try {
      const response = await this.options.fetcher(`${issuer}/.well-known/oauth-authorization-server`, {
        allowLoopback: this.options.allowLoopback,
        maxBytes: 64 * 1024,
      });
      if (response.status !== 200) return undefined;
      const metadata = JSON.parse(response.body.toString('utf8')) as { issuer?: unknown; jwks_uri?: unknown };
      // RFC 8414 §3.3: metadata whose issuer is not exactly the one asked about must not be used.
      if (metadata.issuer !== issuer || typeof metadata.jwks_uri !== 'string') return undefined;
      return metadata.jwks_uri;
    } catch (error) {
      this.options.logger.warn('provider metadata unavailable; using the conventional JWKS path', { issuer, error: String(error) });
      return undefined;
    }
  }
}
