import { describe, expect, it } from 'vitest';
import { advertisedDialects, authorizationServerMetadata, grantTypes, protectedResourceMetadata, wellKnownUrl, type DiscoveryDescription } from '@authmd/protocol';

const issuer = 'https://svc.example';
const base: DiscoveryDescription = {
  issuer,
  dialects: ['current', 'v0.7'],
  scopes: ['r', 'w'],
  resources: [{ resource: issuer, name: 'Notes' }],
  identityTypes: ['anonymous'],
  refresh: false,
  endpoints: { skill: `${issuer}/auth.md`, jwks: `${issuer}/.well-known/jwks.json`, token: `${issuer}/oauth2/token`, revocation: `${issuer}/oauth2/revoke`, identity: `${issuer}/agent/identity` },
  claimGrant: false,
  idJagGrant: false,
};

describe('discovery documents', () => {
  it('AS metadata has the RFC 8414 members and only what is switched on', () => {
    const metadata = authorizationServerMetadata(base);
    expect(metadata).toMatchObject({
      issuer,
      token_endpoint: `${issuer}/oauth2/token`,
      revocation_endpoint: `${issuer}/oauth2/revoke`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      response_types_supported: [],
      grant_types_supported: [grantTypes.jwtBearer],
      agent_auth: { skill: `${issuer}/auth.md`, identity_endpoint: `${issuer}/agent/identity`, identity_types_supported: ['anonymous'] },
    });
    const agentAuth = metadata.agent_auth as Record<string, unknown>;
    for (const absent of ['claim_endpoint', 'events_endpoint', 'events_supported', 'register_uri', 'identity_assertion', 'anonymous']) {
      expect(agentAuth, absent).not.toHaveProperty(absent);
    }
    expect(metadata).not.toHaveProperty('authorization_grant_profiles_supported');
    expect(JSON.stringify(metadata)).not.toContain('null');
  });

  it('switching features on adds exactly their members', () => {
    const metadata = authorizationServerMetadata({
      ...base,
      dialects: ['current', 'v0.7', 'v0.1'],
      identityTypes: ['anonymous', 'service_auth', 'identity_assertion'],
      refresh: true,
      claimGrant: true,
      idJagGrant: true,
      endpoints: { ...base.endpoints, claim: `${issuer}/agent/identity/claim`, events: `${issuer}/agent/event/notify`, v01Register: `${issuer}/agent/auth` },
    });
    expect(metadata.grant_types_supported).toEqual([grantTypes.jwtBearer, grantTypes.claim]);
    expect(metadata.authorization_grant_profiles_supported).toEqual(['urn:ietf:params:oauth:grant-profile:id-jag']);
    expect(metadata.agent_auth).toMatchObject({
      claim_endpoint: `${issuer}/agent/identity/claim`,
      events_endpoint: `${issuer}/agent/event/notify`,
      identity_types_supported: ['anonymous', 'service_auth', 'identity_assertion', 'refresh'],
      // v0.1 registers an email as an identity assertion of type verified_email, and issues both credential types.
      identity_assertion: { assertion_types_supported: ['urn:ietf:params:oauth:token-type:id-jag', 'verified_email'], credential_types_supported: ['access_token', 'api_key'] },
      anonymous: { credential_types_supported: ['api_key'] },
      register_uri: `${issuer}/agent/auth`,
    });
  });

  it('PRM names its resource and authorization server', () => {
    expect(protectedResourceMetadata(base, base.resources[0]!)).toEqual({
      resource: issuer,
      authorization_servers: [issuer],
      scopes_supported: ['r', 'w'],
      bearer_methods_supported: ['header'],
      resource_name: 'Notes',
      resource_documentation: `${issuer}/auth.md`,
    });
  });

  it('well-known URLs go between host and path (RFC 8414 §3, RFC 9728 §3.1)', () => {
    expect(wellKnownUrl('https://svc.example', '/.well-known/oauth-protected-resource')).toBe('https://svc.example/.well-known/oauth-protected-resource');
    expect(wellKnownUrl('https://svc.example/', '/.well-known/oauth-protected-resource')).toBe('https://svc.example/.well-known/oauth-protected-resource');
    expect(wellKnownUrl('https://svc.example/api/v1', '/.well-known/oauth-authorization-server')).toBe(
      'https://svc.example/.well-known/oauth-authorization-server/api/v1',
    );
  });
});

describe('advertisedDialects', () => {
  const identity = { identity_endpoint: 'https://a.example/agent/identity' };

  it('reads each dialect from what the metadata advertises', () => {
    const both = { grant_types_supported: [grantTypes.jwtBearer, grantTypes.claim], agent_auth: { ...identity, identity_types_supported: ['anonymous', 'refresh'] } };
    expect(advertisedDialects(both)).toEqual({ current: true, v07: true, v01: false });
    const v07Only = { grant_types_supported: [grantTypes.jwtBearer, grantTypes.claim], agent_auth: { ...identity, identity_types_supported: ['anonymous'] } };
    expect(advertisedDialects(v07Only)).toEqual({ current: false, v07: true, v01: false });
    const currentOnly = { grant_types_supported: [grantTypes.jwtBearer], agent_auth: { ...identity, identity_types_supported: ['anonymous'] } };
    expect(advertisedDialects(currentOnly)).toEqual({ current: true, v07: false, v01: false });
    expect(advertisedDialects({ agent_auth: { register_uri: 'https://a.example/agent/auth' } })).toEqual({ current: false, v07: false, v01: true });
    expect(advertisedDialects({})).toEqual({ current: false, v07: false, v01: false });
  });

  it('matches what our own metadata says for every combination of dialects switched on', () => {
    const description = (dialects: DiscoveryDescription['dialects']): DiscoveryDescription => ({
      issuer: 'https://a.example',
      dialects,
      scopes: ['notes.read'],
      resources: [],
      identityTypes: ['anonymous'],
      refresh: dialects.includes('current'),
      endpoints: { skill: 'https://a.example/auth.md', jwks: 'https://a.example/jwks', token: 'https://a.example/token', revocation: 'https://a.example/revoke', identity: 'https://a.example/agent/identity' },
      claimGrant: dialects.includes('v0.7'),
      idJagGrant: false,
    });
    expect(advertisedDialects(authorizationServerMetadata(description(['current', 'v0.7'])))).toEqual({ current: true, v07: true, v01: false });
    expect(advertisedDialects(authorizationServerMetadata(description(['current'])))).toEqual({ current: true, v07: false, v01: false });
    expect(advertisedDialects(authorizationServerMetadata(description(['v0.7'])))).toEqual({ current: false, v07: true, v01: false });
  });
});
