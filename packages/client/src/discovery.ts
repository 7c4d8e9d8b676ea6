import { advertisedDialects, bearerChallenge, wellKnown, wellKnownUrl, withoutTrailingSlash, type AdvertisedDialects } from '@authmd/protocol';
import { AuthmdClientError } from './errors.ts';
import { requestJson, type HttpOptions } from './http.ts';
import { chooseDialect, type Dialect } from './dialect.ts';
import { v01IdentityTypes } from './v01/methods.ts';

/** What an agent needs to know about a service, learned from its metadata. */
export interface ServiceInfo {
  issuer: string;
  /** The protected resource the agent asked about (RFC 9728), when a resource was discovered. */
  resource: string | undefined;
  endpoints: {
    /** Absent on a service that speaks only v0.1. */
    identity: string | undefined;
    claim: string | undefined;
    /** Absent on a service that speaks only v0.1 and publishes no RFC 8414 members. */
    token: string | undefined;
    revocation: string | undefined;
    /** v0.1's `register_uri` and `claim_uri`. */
    v01Register: string | undefined;
    v01Claim: string | undefined;
  };
  /**
   * Registration methods in this client's words (`anonymous`, `service_auth`, `identity_assertion`);
   * for v0.1, read from its `assertion_types_supported` (`verified_email` is `service_auth`).
   */
  identityTypes: string[];
  /** Which generations of the protocol the service speaks, read from what it advertises. */
  dialects: AdvertisedDialects;
  /** The one this client speaks to it: the newest advertised. */
  dialect: Dialect;
  scopes: string[];
  metadata: Record<string, any>;
}

const DEFAULT_LIFETIME_MS = 300_000;

/**
 * Discovery (RFC 9728 → RFC 8414): from a 401's `resource_metadata`, or from a base URL. The
 * protected-resource metadata must describe the URL asked about (same origin, and a path prefix of
 * it: the relaxation most clients and draft-ietf-oauth-rfc9728bis make), and the authorization
 * server's metadata must name exactly the issuer it was fetched for (RFC 8414 §3.3); otherwise the
 * documents are not used. Results are cached per issuer for their Cache-Control lifetime.
 */
export class Discovery {
  private readonly byIssuer = new Map<string, { info: ServiceInfo; until: number }>();

  constructor(
    private readonly http: HttpOptions,
    private readonly clock: () => number,
  ) {}

  /** From a 401 answer to `requestUrl`: its challenge points at the resource's metadata. */
  async fromChallenge(requestUrl: string, wwwAuthenticate: string | null): Promise<ServiceInfo> {
    const metadataUrl = bearerChallenge(wwwAuthenticate)?.resource_metadata;
    if (!metadataUrl) {
      throw new AuthmdClientError('agent_auth_unsupported', `${requestUrl} answered 401 without a resource_metadata challenge: it does not advertise auth.md.`);
    }
    return this.fromResourceMetadata(metadataUrl, requestUrl);
  }

  /**
   * From a service's base URL, its issuer, or a URL of its API: the resource metadata of that URL
   * (or of its origin) when it describes the URL; otherwise the URL (or its origin) is taken as the
   * issuer itself, as the official client does. A document about something else is never used.
   */
  async fromUrl(url: string): Promise<ServiceInfo> {
    const base = withoutTrailingSlash(url);
    const cached = this.cached(base);
    if (cached) return cached;
    const origin = new URL(base).origin;
    for (const candidate of new Set([base, origin])) {
      const metadataUrl = wellKnownUrl(candidate, wellKnown.protectedResource);
      const prm = await requestJson(this.http, metadataUrl, { headers: { Accept: 'application/json' } }, 'Reading protected resource metadata');
      const resource = (prm.body as { resource?: unknown } | undefined)?.resource;
      if (prm.status === 200 && typeof resource === 'string' && describes(resource, base)) return this.fromResourceMetadata(metadataUrl, base, prm);
    }
    try {
      return await this.fromIssuer(base, undefined);
    } catch (error) {
      if (base === origin || !(error instanceof AuthmdClientError) || error.code !== 'discovery_failed') throw error;
      return this.fromIssuer(origin, undefined);
    }
  }

  private async fromResourceMetadata(metadataUrl: string, askedFor: string, prefetched?: { status: number; headers: Headers; body: unknown }): Promise<ServiceInfo> {
    const prm = prefetched ?? (await requestJson(this.http, metadataUrl, { headers: { Accept: 'application/json' } }, 'Reading protected resource metadata'));
    const body = prm.body as Record<string, any> | undefined;
    if (prm.status !== 200 || typeof body?.resource !== 'string') {
      throw new AuthmdClientError('discovery_failed', `${metadataUrl} did not answer with protected resource metadata (${prm.status}).`, { status: prm.status });
    }
    if (!describes(body.resource, askedFor)) {
      throw new AuthmdClientError('resource_mismatch', `The metadata at ${metadataUrl} describes ${body.resource}, not ${askedFor}; it is not used (RFC 9728 §3.3).`);
    }
    const issuer = Array.isArray(body.authorization_servers) && typeof body.authorization_servers[0] === 'string' ? body.authorization_servers[0] : undefined;
    if (!issuer) throw new AuthmdClientError('discovery_failed', `The metadata at ${metadataUrl} names no authorization server.`);
    return this.fromIssuer(withoutTrailingSlash(issuer), body.resource);
  }

  private async fromIssuer(issuer: string, resource: string | undefined): Promise<ServiceInfo> {
    const cached = this.cached(issuer);
    if (cached) return resource === undefined || cached.resource === resource ? cached : { ...cached, resource };
    const url = wellKnownUrl(issuer, wellKnown.authorizationServer);
    const answer = await requestJson(this.http, url, { headers: { Accept: 'application/json' } }, 'Reading authorization server metadata');
    const metadata = answer.body as Record<string, any> | undefined;
    if (answer.status !== 200 || typeof metadata !== 'object' || metadata === null) {
      throw new AuthmdClientError('discovery_failed', `${url} answered ${answer.status}: no authorization server metadata.`, { status: answer.status });
    }
    // Identical up to a terminating slash, which issuers are normalised without (as the official client does).
    if (typeof metadata.issuer !== 'string' || withoutTrailingSlash(metadata.issuer) !== issuer) {
      throw new AuthmdClientError('issuer_mismatch', `The metadata at ${url} names issuer ${metadata.issuer}, not ${issuer}; it is not used (RFC 8414 §3.3).`);
    }
    const agentAuth = metadata.agent_auth;
    const dialects = advertisedDialects(metadata);
    const identityDialects = typeof agentAuth?.identity_endpoint === 'string' && typeof metadata.token_endpoint === 'string';
    if (!identityDialects && !dialects.v01) {
      throw new AuthmdClientError('agent_auth_unsupported', `${issuer} publishes no agent_auth identity endpoint (nor a v0.1 register_uri): it does not support auth.md registration.`);
    }
    const dialect = chooseDialect(dialects, identityDialects);
    const string = (value: unknown) => (typeof value === 'string' ? value : undefined);
    const identityTypes: string[] =
      dialect === 'v0.1' ? v01IdentityTypes(agentAuth) : Array.isArray(agentAuth.identity_types_supported) ? agentAuth.identity_types_supported : [];
    const info: ServiceInfo = {
      issuer,
      resource,
      endpoints: {
        identity: string(agentAuth.identity_endpoint),
        claim: string(agentAuth.claim_endpoint),
        token: string(metadata.token_endpoint),
        revocation: string(metadata.revocation_endpoint),
        v01Register: string(agentAuth.register_uri),
        v01Claim: string(agentAuth.claim_uri),
      },
      identityTypes,
      dialects,
      dialect,
      scopes: Array.isArray(metadata.scopes_supported) ? metadata.scopes_supported : [],
      metadata,
    };
    this.byIssuer.set(issuer, { info, until: this.clock() + lifetime(answer.headers) });
    return info;
  }

  private cached(issuer: string): ServiceInfo | undefined {
    const entry = this.byIssuer.get(issuer);
    return entry && entry.until > this.clock() ? entry.info : undefined;
  }
}

/** The resource identifier covers the URL asked about: same origin, and its path is a prefix. */
function describes(resource: string, askedFor: string): boolean {
  if (!URL.canParse(resource) || !URL.canParse(askedFor)) return false;
  const r = new URL(resource);
  const a = new URL(askedFor);
  if (r.origin !== a.origin) return false;
  const prefix = withoutTrailingSlash(r.pathname);
  return prefix === '' || a.pathname === prefix || a.pathname.startsWith(`${prefix}/`);
}

function lifetime(headers: Headers): number {
  const maxAge = /max-age=(\d+)/.exec(headers.get('cache-control') ?? '')?.[1];
  return maxAge ? Math.min(Number(maxAge) * 1000, 86_400_000) : DEFAULT_LIFETIME_MS;
}
