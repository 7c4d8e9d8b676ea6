import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/index.ts';
import { startScriptedService } from './scripted-service.ts';
import { E2E_TIMEOUT } from './support.ts';

/**
 * Two auth.md services on one origin, each with its own issuer path (RFC 8414 §3.1 path issuers; the
 * service supports an issuer with a path). Each is a service of its own: its own metadata, its own
 * registration, its own tokens — the client must not take one for the other because they share a host.
 */
async function twoTenants() {
  return startScriptedService((request, base) => {
    const tenant = /^\/(?:\.well-known\/oauth-(?:protected-resource|authorization-server)\/)?(a|b)(?:\/|$)/.exec(request.path)?.[1];
    if (!tenant) return undefined;
    const issuer = `${base}/${tenant}`;
    if (request.method === 'GET' && request.path === `/.well-known/oauth-protected-resource/${tenant}/api`) {
      return { status: 200, body: { resource: `${issuer}/api`, authorization_servers: [issuer], scopes_supported: ['notes.read'] } };
    }
    if (request.method === 'GET' && request.path === `/.well-known/oauth-protected-resource/${tenant}`) {
      return { status: 200, body: { resource: issuer, authorization_servers: [issuer], scopes_supported: ['notes.read'] } };
    }
    if (request.method === 'GET' && request.path === `/.well-known/oauth-authorization-server/${tenant}`) {
      return {
        status: 200,
        body: {
          issuer,
          token_endpoint: `${issuer}/oauth2/token`,
          grant_types_supported: [grantTypes.jwtBearer],
          agent_auth: { identity_endpoint: `${issuer}/agent/identity`, claim_endpoint: `${issuer}/agent/identity/claim`, identity_types_supported: ['anonymous'] },
        },
      };
    }
    if (request.method === 'POST' && request.path === `/${tenant}/agent/identity`) {
      return {
        status: 200,
        body: {
          id: `reg_${tenant}`,
          type: 'anonymous',
          identity: { assertion: `eyJ.${tenant}.assertion`, expires_at: new Date(Date.now() + 3_600_000).toISOString() },
          scopes: { pre_claim: ['notes.read'], post_claim: ['notes.read'] },
          claim: { token: `clm_${tenant}`, expires_at: new Date(Date.now() + 86_400_000).toISOString(), url: `${issuer}/agent/identity/claim` },
        },
      };
    }
    if (request.method === 'POST' && request.path === `/${tenant}/oauth2/token`) {
      return { status: 200, body: { access_token: `at_${tenant}`, token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' } };
    }
    if (request.path === `/${tenant}/api/things`) {
      if (request.authorization === `Bearer at_${tenant}`) return { status: 200, body: { tenant } };
      return { status: 401, body: { error: 'unauthorized' }, headers: { 'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/${tenant}/api"` } };
    }
    return undefined;
  });
}

describe('two path issuers on one origin', () => {
  it(
    'authenticate: each issuer gets its own registration and record',
    async () => {
      const service = await twoTenants();
      const client = new AgentClient();
      expect(await client.authenticate({ issuer: `${service.base}/a` })).toMatchObject({ status: 'ready', registration_id: 'reg_a', access_token: 'at_a' });
      expect(await client.authenticate({ issuer: `${service.base}/b` })).toMatchObject({ status: 'ready', registration_id: 'reg_b', access_token: 'at_b' });
      expect(Object.keys(await client.status()).sort()).toEqual([`${service.base}/a`, `${service.base}/b`]);
    },
    E2E_TIMEOUT,
  );

  it(
    "fetch: tenant b's API never receives tenant a's token",
    async () => {
      const service = await twoTenants();
      const client = new AgentClient();
      const a = await client.fetch(`${service.base}/a/api/things`);
      expect(a.status).toBe(200);
      expect(await a.json()).toEqual({ tenant: 'a' });
      const b = await client.fetch(`${service.base}/b/api/things`);
      const toB = service.seen.filter((r) => r.path === '/b/api/things').map((r) => r.authorization);
      expect(toB, 'bearer tokens sent to tenant b').not.toContain('Bearer at_a');
      expect(b.status).toBe(200);
      expect(await b.json()).toEqual({ tenant: 'b' });
    },
    E2E_TIMEOUT,
  );
});
