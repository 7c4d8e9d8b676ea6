import {
  authorizationServerMetadata,
  paths,
  protectedResourceMetadata,
  renderAuthMd,
  wellKnown,
  wellKnownUrl,
  type DiscoveryDescription,
} from '@authmd/protocol';
import type { ServiceConfig } from '../config.ts';
import type { Endpoint } from './env.ts';
import { speaksIdentity } from './dialects.ts';
import { publicCache, text } from './responses.ts';

/** What this service offers, as the discovery documents and auth.md describe it. */
export function describeService(config: ServiceConfig): DiscoveryDescription {
  const url = (path: string) => config.issuer + path;
  const trusting = config.trust.issuers.size > 0;
  const identity = speaksIdentity(config.dialects);
  const v01 = config.dialects.includes('v0.1');
  return {
    issuer: config.issuer,
    dialects: config.dialects,
    scopes: config.scopes.supported,
    resources: config.resources,
    identityTypes: [
      ...(config.methods.anonymous ? ['anonymous' as const] : []),
      ...(config.methods.serviceAuth ? ['service_auth' as const] : []),
      ...(trusting ? ['identity_assertion' as const] : []),
    ],
    refresh: config.dialects.includes('current'),
    endpoints: {
      skill: url(paths.authMd),
      jwks: url(paths.jwks),
      token: url(paths.token),
      revocation: url(paths.revoke),
      introspection: config.introspection ? url(paths.introspect) : undefined,
      identity: identity ? url(paths.identity) : undefined,
      claim: identity ? url(paths.claim) : undefined,
      events: trusting ? url(paths.events) : undefined,
      v01Register: v01 ? url(paths.v01.register) : undefined,
      v01Claim: v01 ? url(paths.v01.claim) : undefined,
      v01Revocation: v01 && trusting ? url(paths.v01.revoke) : undefined,
    },
    claimGrant: config.dialects.includes('v0.7'),
    idJagGrant: trusting && config.trust.tokenGrant,
  };
}

/** The GET endpoints of discovery, keyed by path. Documents are rendered once; they change only with configuration. */
export function discoveryEndpoints(config: ServiceConfig): Map<string, Endpoint> {
  const description = describeService(config);
  const endpoints = new Map<string, Endpoint>();
  const document = (body: string, contentType: string): Endpoint => async () => text(body, contentType, 200, publicCache);

  for (const resource of config.resources) {
    const path = new URL(wellKnownUrl(resource.resource, wellKnown.protectedResource)).pathname;
    endpoints.set(path, document(JSON.stringify(protectedResourceMetadata(description, resource)), 'application/json'));
  }
  // Also at the root, for clients that look only there (profile: RFC 9728 resource identifiers), when no
  // resource is the origin itself: the first resource's metadata, whose `resource` leads to its own URL.
  // Not for an issuer with a path: the origin's root may belong to another service.
  if (config.issuerPath === '' && !endpoints.has(wellKnown.protectedResource)) {
    endpoints.set(wellKnown.protectedResource, document(JSON.stringify(protectedResourceMetadata(description, config.resources[0]!)), 'application/json'));
  }
  const asPath = new URL(wellKnownUrl(config.issuer, wellKnown.authorizationServer)).pathname;
  endpoints.set(asPath, document(JSON.stringify(authorizationServerMetadata(description)), 'application/json'));

  const authMd = renderAuthMd({
    serviceName: config.name,
    summary: config.summary,
    discovery: description,
    preClaimScopes: config.scopes.preClaim,
    postClaimScopes: config.scopes.postClaim,
    trustedProviders: [...config.trust.issuers.values()].map((entry) => entry.displayName),
    lifetimes: {
      assertionSeconds: config.lifetimes.assertionMs / 1000,
      accessTokenSeconds: config.lifetimes.accessTokenMs / 1000,
      claimWindowSeconds: config.lifetimes.claimWindowMs / 1000,
      attemptSeconds: config.lifetimes.attemptMs / 1000,
      refreshTokenSeconds: config.dialects.includes('current') ? config.lifetimes.refreshTokenMs / 1000 : undefined,
    },
  });
  endpoints.set(config.issuerPath + paths.authMd, document(authMd, 'text/markdown; charset=utf-8'));
  endpoints.set(config.issuerPath + paths.jwks, async (_request, { ctx }) => text(ctx.keys.jwks(), 'application/json', 200, publicCache));
  return endpoints;
}
