import { oneLine, type Fetcher } from '@authmd/core/fetch';
import { freshnessMs, type FreshnessBounds } from './cache-control.ts';
import { publicJwksProblem, type JsonWebKeySet } from './jwk.ts';

export type { JsonWebKeySet, Jwk } from './jwk.ts';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const MAX_BYTES = 256 * 1024;

export type JwksErrorReason = 'fetch_failed' | 'http_status' | 'invalid_jwks';

export class JwksError extends Error {
  override readonly name = 'JwksError';

  constructor(
    readonly reason: JwksErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface JwksCacheOptions {
  fetcher: Fetcher;
  clock: () => number;
  allowLoopback?: boolean;
  /** Bounds on the lifetime the provider's `Cache-Control` asks for; `no-store` and `no-cache` get the floor. */
  floorMs?: number;
  ceilingMs?: number;
  /** The lifetime when the response has no `max-age`. */
  defaultMs?: number;
  /** After a fetch, how long an unknown `kid` may not cause another one. */
  refetchCooldownMs?: number;
  /** Called when a fetch finds a set different from the one cached for that URI (a rotation, a withdrawn key). */
  onChanged?: (jwksUri: string) => void;
}

interface Entry {
  keys: JsonWebKeySet;
  freshUntil: number;
}

/**
 * Providers' key sets by URI. Only successes are cached; concurrent callers share one fetch; an
 * unknown `kid` refetches at most once per cooldown, so tokens with made-up `kid`s cannot make the
 * service hammer a provider.
 */
export class JwksCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<JsonWebKeySet>>();
  private readonly lastFetchAt = new Map<string, number>();
  private readonly bounds: FreshnessBounds;
  private readonly cooldownMs: number;

  constructor(private readonly options: JwksCacheOptions) {
    this.bounds = {
      floorMs: options.floorMs ?? 5 * MINUTE,
      ceilingMs: options.ceilingMs ?? 24 * 60 * MINUTE,
      defaultMs: options.defaultMs ?? 10 * MINUTE,
    };
    this.cooldownMs = options.refetchCooldownMs ?? 30 * SECOND;
  }

  get(jwksUri: string): Promise<JsonWebKeySet> {
    const entry = this.entries.get(jwksUri);
    if (entry && this.options.clock() < entry.freshUntil) return Promise.resolve(entry.keys);
    return this.fetch(jwksUri);
  }

  /** The set this process holds for `jwksUri` and until when it is fresh, without fetching. */
  cached(jwksUri: string): { keys: JsonWebKeySet; freshUntil: number } | undefined {
    const entry = this.entries.get(jwksUri);
    return entry && { keys: entry.keys, freshUntil: entry.freshUntil };
  }

  /** Drops the cached set of `jwksUri` (every set when omitted): the next use fetches it again. */
  forget(jwksUri?: string): void {
    if (jwksUri === undefined) this.entries.clear();
    else this.entries.delete(jwksUri);
  }

  /** The set fetched again, unless a fetch started less than the cooldown ago: then undefined. */
  async refreshForUnknownKid(jwksUri: string): Promise<JsonWebKeySet | undefined> {
    const pending = this.inflight.get(jwksUri);
    if (pending) return pending;
    const last = this.lastFetchAt.get(jwksUri);
    if (last !== undefined && this.options.clock() - last < this.cooldownMs) return undefined;
    return this.fetch(jwksUri);
  }

  private fetch(jwksUri: string): Promise<JsonWebKeySet> {
    const pending = this.inflight.get(jwksUri);
    if (pending) return pending;
    this.lastFetchAt.set(jwksUri, this.options.clock());
    const loading = this.load(jwksUri).finally(() => this.inflight.delete(jwksUri));
    this.inflight.set(jwksUri, loading);
    return loading;
  }

  private async load(jwksUri: string): Promise<JsonWebKeySet> {
    let response;
    try {
      response = await this.options.fetcher(jwksUri, {
        allowLoopback: this.options.allowLoopback ?? false,
        maxBytes: MAX_BYTES,
        headers: { accept: 'application/jwk-set+json, application/json' },
      });
    } catch (error) {
      throw new JwksError('fetch_failed', `JWKS ${jwksUri} could not be fetched: ${oneLine(String((error as Error)?.message ?? error))}`, { cause: error });
    }
    if (response.status !== 200) throw new JwksError('http_status', `JWKS ${jwksUri} answered ${response.status}`);
    let document: unknown;
    try {
      document = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw new JwksError('invalid_jwks', `JWKS ${jwksUri} is not JSON`);
    }
    const problem = publicJwksProblem(document);
    if (problem !== undefined) throw new JwksError('invalid_jwks', `JWKS ${jwksUri} is refused: ${problem}`);
    const keys = document as JsonWebKeySet;
    const previous = this.entries.get(jwksUri);
    if (previous && JSON.stringify(previous.keys) !== JSON.stringify(keys)) this.options.onChanged?.(jwksUri);
    this.entries.set(jwksUri, { keys, freshUntil: this.options.clock() + freshnessMs(response.headers, this.bounds) });
    return keys;
  }
}
