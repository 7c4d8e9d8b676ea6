import type { TrustedIssuer } from '../config.ts';
import type { Logger } from '../logger.ts';
import { CimdResolver, type ClientMetadata } from './cimd.ts';
import { JwksCache, type JsonWebKeySet } from './jwks-cache.ts';
import type { Fetcher } from './safe-fetch.ts';

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

  constructor(
    private readonly issuers: Map<string, TrustedIssuer>,
    private readonly options: { fetcher: Fetcher; clock: () => number; allowLoopback: boolean; logger: Logger },
  ) {
    this.jwks = new JwksCache({ fetcher: options.fetcher, clock: options.clock, allowLoopback: options.allowLoopback });
    this.cimd = new CimdResolver({ fetcher: options.fetcher, clock: options.clock, allowLoopback: options.allowLoopback });
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

  /** The issuer's key set and where it came from. */
  async keys(entry: TrustedIssuer): Promise<{ uri: string; keys: JsonWebKeySet }> {
    const uri = await this.jwksUri(entry);
    return { uri, keys: await this.jwks.get(uri) };
  }

  /** After an unknown `kid`: the key set fetched again (at most once per cooldown), or undefined. */
  async keysAfterUnknownKid(entry: TrustedIssuer): Promise<JsonWebKeySet | undefined> {
    return this.jwks.refreshForUnknownKid(await this.jwksUri(entry));
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
