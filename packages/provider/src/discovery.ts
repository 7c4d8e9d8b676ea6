import { wellKnown, wellKnownUrl, withoutTrailingSlash } from '@authmd/protocol';
import { ProviderError } from './errors.ts';
import { errorMessage, type Fetcher } from './fetcher.ts';

/** What the provider needs to know about a service before it mints for it or notifies it. */
export interface ServiceMetadata {
  /** The audience as the caller named it: the service's base URL, its issuer, or a protected resource. */
  audience: string;
  /** The service's issuer identifier (RFC 8414 `issuer`): the `aud` of ID-JAGs and SETs. */
  issuer: string;
  /** `agent_auth.events_endpoint`, where revocation SETs go; null when the service advertises none. */
  eventsEndpoint: string | null;
  /** The protected resource whose metadata named the issuer, when the audience was one. */
  resource: string | null;
}

export interface DiscoveryOptions {
  fetcher: Fetcher;
  allowLoopback: boolean;
  clock: () => number;
  /** How long a resolved audience is reused. */
  cacheMs: number;
  timeoutMs?: number;
}

const MAX_METADATA_BYTES = 64 * 1024;
/** Audiences are named by callers: the cache is bounded, oldest entry out first. */
const MAX_CACHED = 1000;

/**
 * Resolves an audience to the service behind it, per RFC 9728 and RFC 8414:
 * 1. protected resource metadata for the audience (`/.well-known/oauth-protected-resource` with the
 *    audience's path inserted, then at the origin root, where the published sample serves it) →
 *    `authorization_servers[0]`; when there is none, the audience itself is taken as the issuer;
 * 2. the authorization server's metadata, whose `issuer` must be that identifier (a trailing slash
 *    aside, as the published examples write `authorization_servers` with one); ID-JAGs then carry
 *    exactly the `issuer` the metadata states.
 * Every request goes through the injected (SSRF-safe) fetcher. Successes are cached for `cacheMs`;
 * failures are not, and concurrent lookups of one audience share one round of requests.
 */
export class AudienceDiscovery {
  private readonly cache = new Map<string, { metadata: ServiceMetadata; until: number }>();
  private readonly inFlight = new Map<string, Promise<ServiceMetadata>>();

  constructor(private readonly options: DiscoveryOptions) {}

  resolve(audience: string): Promise<ServiceMetadata> {
    const cached = this.cache.get(audience);
    if (cached && cached.until > this.options.clock()) return Promise.resolve(cached.metadata);
    let pending = this.inFlight.get(audience);
    if (!pending) {
      pending = this.lookup(audience).then(
        (metadata) => {
          if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
          this.cache.delete(audience);
          this.cache.set(audience, { metadata, until: this.options.clock() + this.options.cacheMs });
          return metadata;
        },
      ).finally(() => this.inFlight.delete(audience));
      this.inFlight.set(audience, pending);
    }
    return pending;
  }

  /** Forgets cached metadata (all of it, or one audience's). */
  forget(audience?: string): void {
    if (audience === undefined) this.cache.clear();
    else this.cache.delete(audience);
  }

  private async lookup(audience: string): Promise<ServiceMetadata> {
    const url = checkAudience(audience, this.options.allowLoopback);
    let issuerId = audience;
    let resource: string | null = null;

    const prmCandidates = [wellKnownUrl(url.href, wellKnown.protectedResource), `${url.origin}${wellKnown.protectedResource}`];
    for (const candidate of new Set(prmCandidates)) {
      const document = await this.getJson(candidate, audience);
      if (!document) continue;
      const servers = document.authorization_servers;
      if (!Array.isArray(servers) || typeof servers[0] !== 'string' || servers[0] === '') {
        throw new ProviderError('invalid_audience', `The protected resource metadata at ${candidate} names no authorization server.`);
      }
      issuerId = servers[0];
      resource = typeof document.resource === 'string' ? document.resource : null;
      break;
    }

    checkAudience(issuerId, this.options.allowLoopback);
    const asUrl = wellKnownUrl(issuerId, wellKnown.authorizationServer);
    const metadata = await this.getJson(asUrl, audience);
    if (!metadata) throw new ProviderError('invalid_audience', `${audience} publishes no authorization server metadata (${asUrl}).`);
    const issuer = metadata.issuer;
    if (typeof issuer !== 'string' || withoutTrailingSlash(issuer) !== withoutTrailingSlash(issuerId)) {
      throw new ProviderError(
        'invalid_audience',
        `The authorization server metadata at ${asUrl} names issuer ${JSON.stringify(issuer)}, not ${issuerId}: refusing to mint for it.`,
      );
    }
    return { audience, issuer, eventsEndpoint: eventsEndpointOf(metadata), resource };
  }

  /** The JSON object at `url`; undefined when the server answers 404 (or 410); an error otherwise. */
  private async getJson(url: string, audience: string): Promise<Record<string, unknown> | undefined> {
    let response;
    try {
      response = await this.options.fetcher(url, {
        method: 'GET',
        headers: { Accept: 'application/json' },
        allowLoopback: this.options.allowLoopback,
        timeoutMs: this.options.timeoutMs ?? 5000,
        maxBytes: MAX_METADATA_BYTES,
      });
    } catch (error) {
      throw new ProviderError('invalid_audience', `Could not fetch the metadata of ${audience} (${url}): ${errorMessage(error)}`);
    }
    if (response.status === 404 || response.status === 410) return undefined;
    if (response.status !== 200) throw new ProviderError('invalid_audience', `${url} answered ${response.status}.`);
    let value: unknown;
    try {
      value = JSON.parse(response.body.toString('utf8'));
    } catch {
      throw new ProviderError('invalid_audience', `${url} did not answer JSON.`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProviderError('invalid_audience', `${url} did not answer a JSON object.`);
    return value as Record<string, unknown>;
  }
}

/** An audience is an absolute https URL (http on loopback in development) without credentials or fragment. */
export function checkAudience(audience: string, allowLoopback: boolean): URL {
  let url: URL;
  try {
    url = new URL(audience);
  } catch {
    throw new ProviderError('invalid_request', 'The audience must be an absolute URL.');
  }
  const loopback = isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowLoopback && loopback)) {
    throw new ProviderError('invalid_request', `The audience must be an https URL${allowLoopback ? ' (or http on loopback)' : ''}.`);
  }
  if (url.username || url.password || url.hash) throw new ProviderError('invalid_request', 'The audience must not carry credentials or a fragment.');
  return url;
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function eventsEndpointOf(metadata: Record<string, unknown>): string | null {
  const agentAuth = metadata.agent_auth;
  if (typeof agentAuth !== 'object' || agentAuth === null) return null;
  const endpoint = (agentAuth as Record<string, unknown>).events_endpoint;
  if (typeof endpoint !== 'string') return null;
  try {
    new URL(endpoint);
    return endpoint;
  } catch {
    return null;
  }
}
