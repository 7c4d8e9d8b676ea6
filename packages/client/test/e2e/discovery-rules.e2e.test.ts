import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError } from '../../src/index.ts';
import { anonymousRegistration, authorizationServerMetadata, challenge, protectedResourceMetadata, startScriptedService, type SeenRequest } from './scripted-service.ts';
import { E2E_TIMEOUT, rejectionOf } from './support.ts';

/**
 * Discovery rules (issue 5, Build 1): protected-resource metadata whose `resource` does not cover the
 * URL asked about (RFC 9728 §3.3) and authorization-server metadata whose `issuer` is not the one it
 * was fetched for (RFC 8414 §3.3) are refused, and nothing is registered on their word.
 */

const API_PATH = '/api/things';

/** A service whose metadata documents are what the test says; its API wants a bearer token. */
async function serviceWith(documents: { prm?: (base: string) => Record<string, unknown>; as?: (base: string) => Record<string, unknown>; asHeaders?: Record<string, string> }) {
  return startScriptedService((request: SeenRequest, base) => {
    if (request.method === 'GET' && request.path === '/.well-known/oauth-protected-resource') {
      return { status: 200, body: documents.prm?.(base) ?? protectedResourceMetadata(base) };
    }
    if (request.method === 'GET' && request.path === '/.well-known/oauth-authorization-server') {
      return { status: 200, body: documents.as?.(base) ?? authorizationServerMetadata(base), headers: documents.asHeaders ?? {} };
    }
    if (request.path === API_PATH) {
      if (request.authorization === 'Bearer at_scripted') return { status: 200, body: { things: [] } };
      return challenge(base);
    }
    if (request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'anonymous') {
      return anonymousRegistration(base);
    }
    if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.jwtBearer) {
      return { status: 200, body: { access_token: 'at_scripted', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' } };
    }
    return undefined;
  });
}

const asked = (seen: SeenRequest[]) => seen.map((r) => `${r.method} ${r.path}`);

async function expectRefused(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await rejectionOf(promise);
  expect(error).toBeInstanceOf(AuthmdClientError);
  expect(error.code, error.message).toBe(code);
}

describe('discovery rules', () => {
  it(
    'control: metadata that describes the API and names its own issuer is used (trailing slash in authorization_servers tolerated)',
    async () => {
      const service = await serviceWith({ prm: (base) => protectedResourceMetadata(base, { resource: `${base}/api/`, authorization_servers: [`${base}/`] }) });
      const client = new AgentClient();
      const response = await client.fetch(`${service.base}${API_PATH}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ things: [] });
      expect(asked(service.seen)).toContain('POST /agent/identity');
    },
    E2E_TIMEOUT,
  );

  it(
    'resource_mismatch: the resource metadata describes another path, another origin, or a mere string prefix of the path',
    async () => {
      for (const resource of [(base: string) => `${base}/other/`, () => 'https://elsewhere.example/api/', (base: string) => `${base}/api/th`]) {
        const service = await serviceWith({ prm: (base) => protectedResourceMetadata(base, { resource: resource(base) }) });
        const client = new AgentClient();
        await expectRefused(client.fetch(`${service.base}${API_PATH}`), 'resource_mismatch');
        expect(asked(service.seen), `resource ${resource(service.base)}`).toEqual([`GET ${API_PATH}`, 'GET /.well-known/oauth-protected-resource']);
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'from a base URL, resource metadata that describes another origin is not used: the base is taken as the issuer (as the official client does)',
    async () => {
      const service = await serviceWith({ prm: (base) => protectedResourceMetadata(base, { resource: base.replace('127.0.0.1', 'localhost') }) });
      const info = await new AgentClient().discover(service.base);
      expect(info.issuer).toBe(service.base);
      expect(info.resource, 'the other origin never becomes the token resource').toBeUndefined();
      expect(asked(service.seen)).toEqual(['GET /.well-known/oauth-protected-resource', 'GET /.well-known/oauth-authorization-server']);
    },
    E2E_TIMEOUT,
  );

  it(
    'issuer_mismatch: the authorization server metadata names another issuer (other origin, or other path) — from a 401 and from a base URL',
    async () => {
      for (const issuer of [(base: string) => base.replace('127.0.0.1', 'localhost'), (base: string) => `${base}/tenant-b`]) {
        const service = await serviceWith({ as: (base) => authorizationServerMetadata(base, { issuer: issuer(base) }) });
        await expectRefused(new AgentClient().fetch(`${service.base}${API_PATH}`), 'issuer_mismatch');
        await expectRefused(new AgentClient().authenticate({ url: service.base }), 'issuer_mismatch');
        const seen = asked(service.seen);
        expect(seen.filter((line) => line.startsWith('POST')), `issuer ${issuer(service.base)}: nothing registered, nothing exchanged`).toEqual([]);
        expect(seen).toContain('GET /.well-known/oauth-authorization-server');
      }
    },
    E2E_TIMEOUT,
  );

  it(
    'caches what it learned per issuer for the metadata\'s max-age, then asks again',
    async () => {
      const service = await serviceWith({ asHeaders: { 'cache-control': 'public, max-age=60' } });
      let now = Date.parse('2026-11-28T12:00:00Z');
      const client = new AgentClient({ clock: () => now });
      const metadataReads = () => asked(service.seen).filter((line) => line === 'GET /.well-known/oauth-authorization-server').length;

      await client.discover(service.base);
      await client.discover(service.base);
      now += 59_000;
      await client.discover(`${service.base}${API_PATH}`);
      expect(metadataReads(), 'within max-age: read once').toBe(1);
      now += 2_000;
      await client.discover(service.base);
      expect(metadataReads(), 'past max-age: read again').toBe(2);
    },
    E2E_TIMEOUT,
  );
});
