import type { Dialect, RegistrationType } from './dialects.ts';
import { eventSchemas, grantTypes, tokenTypes } from './urns.ts';
import { VERIFIED_EMAIL } from './v01.ts';

/**
 * Discovery documents, written from what the service has switched on. A member appears only when
 * the feature behind it answers: a discovery document that lies is worse than a modest one.
 */

export interface ResourceDescription {
  /** The resource identifier (RFC 8707), e.g. `https://api.example.com` or `https://example.com/api`. */
  resource: string;
  name?: string;
  logoUri?: string;
  documentation?: string;
}

export interface DiscoveryDescription {
  issuer: string;
  dialects: readonly Dialect[];
  scopes: readonly string[];
  resources: readonly ResourceDescription[];
  /** Registration methods that answer on this service. */
  identityTypes: readonly RegistrationType[];
  /** Whether `{type:"refresh"}` is served at the identity endpoint. */
  refresh: boolean;
  /** Absolute URLs; a missing one is not offered. */
  endpoints: {
    skill: string;
    jwks: string;
    token: string;
    revocation: string;
    identity?: string;
    claim?: string;
    events?: string;
    introspection?: string;
    v01Register?: string;
    v01Claim?: string;
    v01Revocation?: string;
  };
  /** The v0.7 polling grant is served. */
  claimGrant: boolean;
  /** Trusted providers' ID-JAGs can be redeemed directly at the token endpoint (profile.md §4). */
  idJagGrant: boolean;
}

/** RFC 9728 §2 protected resource metadata for one resource. */
export function protectedResourceMetadata(d: DiscoveryDescription, r: ResourceDescription): Record<string, unknown> {
  return omitEmpty({
    resource: r.resource,
    authorization_servers: [d.issuer],
    scopes_supported: [...d.scopes],
    bearer_methods_supported: ['header'],
    resource_name: r.name,
    resource_logo_uri: r.logoUri,
    resource_documentation: r.documentation ?? d.endpoints.skill,
  });
}

/** RFC 8414 §2 authorization server metadata with the auth.md `agent_auth` member. */
export function authorizationServerMetadata(d: DiscoveryDescription): Record<string, unknown> {
  const primary = d.resources[0];
  const grants = [grantTypes.jwtBearer, ...(d.claimGrant ? [grantTypes.claim] : [])];
  const identityTypes = [...d.identityTypes, ...(d.refresh ? ['refresh'] : [])];
  const v01 = d.dialects.includes('v0.1');
  return omitEmpty({
    issuer: d.issuer,
    token_endpoint: d.endpoints.token,
    revocation_endpoint: d.endpoints.revocation,
    introspection_endpoint: d.endpoints.introspection,
    // RFC 7662 §2.1: introspection callers authenticate; this service takes HTTP Basic only.
    introspection_endpoint_auth_methods_supported: d.endpoints.introspection ? ['client_secret_basic'] : undefined,
    jwks_uri: d.endpoints.jwks,
    // RFC 8414 requires the member; there is no authorization endpoint, so no response type is offered.
    response_types_supported: [],
    grant_types_supported: grants,
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [...d.scopes],
    service_documentation: d.endpoints.skill,
    protected_resources: d.resources.length ? d.resources.map((r) => r.resource) : undefined,
    authorization_grant_profiles_supported: d.idJagGrant ? ['urn:ietf:params:oauth:grant-profile:id-jag'] : undefined,
    // Restated from the primary resource's metadata, as published auth.md services do.
    resource: primary?.resource,
    authorization_servers: [d.issuer],
    bearer_methods_supported: ['header'],
    agent_auth: omitEmpty({
      skill: d.endpoints.skill,
      identity_endpoint: d.endpoints.identity,
      claim_endpoint: d.endpoints.claim,
      events_endpoint: d.endpoints.events,
      identity_types_supported: identityTypes,
      // v0.1 registers an email the agent vouches for as an identity assertion of type verified_email.
      identity_assertion:
        d.identityTypes.includes('identity_assertion') || (v01 && d.identityTypes.includes('service_auth'))
          ? omitEmpty({
              assertion_types_supported: [
                ...(d.identityTypes.includes('identity_assertion') ? [tokenTypes.idJag] : []),
                ...(v01 && d.identityTypes.includes('service_auth') ? [VERIFIED_EMAIL] : []),
              ],
              credential_types_supported: v01 ? ['access_token', 'api_key'] : undefined,
            })
          : undefined,
      anonymous: v01 && d.identityTypes.includes('anonymous') ? { credential_types_supported: ['api_key'] } : undefined,
      events_supported: d.endpoints.events ? [eventSchemas.assertionRevoked] : undefined,
      register_uri: d.endpoints.v01Register,
      claim_uri: d.endpoints.v01Claim,
      revocation_uri: d.endpoints.v01Revocation,
    }),
  });
}

/** Drops undefined members (RFC 9728 §3.2: zero-valued parameters are omitted). */
function omitEmpty(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

export interface AdvertisedDialects {
  /** `current`: the identity endpoint with the read-back ceremony and refresh tokens (`refresh` listed, or no claim grant to poll). */
  current: boolean;
  /** `v0.7`: the identity endpoint with the claim grant (type-in ceremony). */
  v07: boolean;
  /** `v0.1`: `agent_auth.register_uri`. */
  v01: boolean;
}

/** Which dialects authorization server metadata advertises: what an agent reads to know how to talk (profile §1). */
export function advertisedDialects(metadata: Record<string, unknown>): AdvertisedDialects {
  const agentAuth = (typeof metadata.agent_auth === 'object' && metadata.agent_auth !== null ? metadata.agent_auth : {}) as Record<string, unknown>;
  const listed = (value: unknown, item: string) => Array.isArray(value) && value.includes(item);
  const identity = typeof agentAuth.identity_endpoint === 'string';
  const claimGrant = listed(metadata.grant_types_supported, grantTypes.claim);
  return {
    current: identity && (listed(agentAuth.identity_types_supported, 'refresh') || !claimGrant),
    v07: identity && claimGrant,
    v01: typeof agentAuth.register_uri === 'string',
  };
}
