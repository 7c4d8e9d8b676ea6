import { grantTypes } from '@authmd/protocol';
import { exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { discoveryChecks } from '../../src/checks/discovery.ts';

import { runConformance } from '../../src/runner.ts';
import { editJson, jsonAnswer, pathOf, type Breakage, type ProxiedRequest, type ProxiedResponse } from '../fixtures/broken-service.ts';
import { brokenServices } from '../fixtures/lifecycle.ts';
import { runCheck, runChecks } from '../fixtures/run-check.ts';

const PRM = '/.well-known/oauth-protected-resource';
/** The demo's API's own metadata (RFC 9728 §3.1), which the suite judges once the root's names the API. */
const PRM_API = `${PRM}/api/notes`;
const AS = '/.well-known/oauth-authorization-server';
const JWKS = '/.well-known/jwks.json';

const { start: broken, startWithProvider } = brokenServices();

/** A breakage that rewrites the JSON document served at `path`. */
function editDocument(path: string, edit: (body: any, request: ProxiedRequest) => void): Breakage {
  return {
    response: (request, response) =>
      pathOf(request) === path
        ? editJson(response, (body) => {
            edit(body, request);
            return body;
          })
        : response,
  };
}

/** A breakage that rewrites both protected resource metadata documents: the root's and the API's own. */
function editPrm(edit: (body: any, request: ProxiedRequest) => void): Breakage {
  return {
    response: (request, response) =>
      pathOf(request) === PRM || pathOf(request) === PRM_API
        ? editJson(response, (body) => {
            edit(body, request);
            return body;
          })
        : response,
  };
}

/** A breakage that changes the headers (or body) of the answer at `path`. */
function editAnswer(path: string, edit: (response: ProxiedResponse, request: ProxiedRequest) => ProxiedResponse): Breakage {
  return { response: (request, response) => (pathOf(request) === path ? edit(response, request) : response) };
}

const without = (headers: Record<string, string>, name: string): Record<string, string> => Object.fromEntries(Object.entries(headers).filter(([key]) => key !== name));

describe('discovery checks fail against a broken service', () => {
  it('discovery.challenge: a 401 without WWW-Authenticate', async () => {
    const service = await broken(editAnswer('/api/notes', (response) => ({ ...response, headers: without(response.headers, 'www-authenticate') })));
    const result = await runCheck(service, 'discovery.challenge');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/carries no WWW-Authenticate header/);
  });

  it('discovery.challenge: resource_metadata that leads nowhere', async () => {
    const service = await broken(
      editAnswer('/api/notes', (response, request) => ({
        ...response,
        headers: { ...response.headers, 'www-authenticate': `Bearer resource_metadata="http://${request.headers.host}/.well-known/nothing-here"` },
      })),
    );
    const result = await runCheck(service, 'discovery.challenge');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/resource_metadata .*nothing-here does not answer protected resource metadata/);
  });

  it('discovery.challenge: the API given with --api answers 200 without a token', async () => {
    const service = await broken({ answer: (request) => (pathOf(request) === '/api/notes' ? { status: 200, headers: { 'content-type': 'application/json' }, cookies: [], body: Buffer.from('[]') } : undefined) });
    const result = await runCheck(service, 'discovery.challenge');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected 401, got GET \/api\/notes → 200/);
  });

  it('discovery.prm: bearer_methods_supported without "header"', async () => {
    const service = await broken(editPrm((body) => (body.bearer_methods_supported = ['query'])));
    const result = await runCheck(service, 'discovery.prm');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/bearer_methods_supported must include "header".*got \["query"\]/);
  });

  it('discovery.prm: an authorization_servers entry that is not a URL', async () => {
    const service = await broken(editPrm((body) => body.authorization_servers.push(42)));
    const result = await runCheck(service, 'discovery.prm');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/authorization_servers must be a non-empty array of issuer URLs/);
  });

  it('discovery.prm-resource: metadata about another resource', async () => {
    const service = await broken(editDocument(PRM_API, (body) => (body.resource = `${body.resource}/elsewhere`)));
    const result = await runCheck(service, 'discovery.prm-resource');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/describes resource "http:\/\/127\.0\.0\.1:\d+\/api\/notes\/elsewhere", not http:\/\/127\.0\.0\.1:\d+\/api\/notes whose well-known URL was fetched/);
  });

  it('discovery: the root metadata names an API whose own metadata is missing', async () => {
    const service = await broken({ answer: (request) => (pathOf(request) === PRM_API ? jsonAnswer(404, { error: 'not_found' }) : undefined) });
    const result = await runCheck(service, 'discovery.prm');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/no protected resource metadata at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/api\/notes \(RFC 9728 §3\) for http:\/\/127\.0\.0\.1:\d+\/api\/notes, the resource named by http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource: GET \/\.well-known\/oauth-protected-resource\/api\/notes → 404/);
  });

  it('discovery.as-issuer: metadata naming another issuer', async () => {
    const service = await broken(editDocument(AS, (body) => (body.issuer = 'https://issuer.example')));
    const result = await runCheck(service, 'discovery.as-issuer');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/names issuer "https:\/\/issuer\.example", not "http:\/\/127\.0\.0\.1:\d+" it was fetched for/);
  });

  it('discovery.as-metadata: no jwt-bearer grant, no response_types_supported, no revocation_endpoint', async () => {
    const service = await broken(
      editDocument(AS, (body) => {
        body.grant_types_supported = [grantTypes.claim];
        delete body.response_types_supported;
        delete body.revocation_endpoint;
      }),
    );
    const result = await runCheck(service, 'discovery.as-metadata');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/response_types_supported is required/);
    expect(result.message).toMatch(/grant_types_supported must list urn:ietf:params:oauth:grant-type:jwt-bearer/);
    expect(result.message).toMatch(/revocation_endpoint must be a URL, got nothing/);
  });

  it('discovery.agent-auth: an identity type no dialect defines', async () => {
    const service = await broken(editDocument(AS, (body) => body.agent_auth.identity_types_supported.push('password')));
    const result = await runCheck(service, 'discovery.agent-auth');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/identity_types_supported lists "password", which no dialect defines/);
  });

  it('discovery.agent-auth: identity_assertion without the ID-JAG assertion type, events_endpoint without events_supported', async () => {
    const service = await broken(
      editDocument(AS, (body, request) => {
        body.agent_auth.identity_types_supported.push('identity_assertion');
        body.agent_auth.events_endpoint = `http://${request.headers.host}/agent/event/notify`;
      }),
    );
    const result = await runCheck(service, 'discovery.agent-auth');
    expect(result.outcome).toBe('fail');
    // With v0.1 on, the demo lists verified_email there (v0.1's identity assertion of an email), never the ID-JAG type without a provider.
    expect(result.message).toMatch(/identity_assertion\.assertion_types_supported must include urn:ietf:params:oauth:token-type:id-jag, got \["verified_email"\]/);
    expect(result.message).toMatch(/events_supported must name the event schemas/);
  });

  it('discovery.agent-auth: no skill', async () => {
    const service = await broken(editDocument(AS, (body) => delete body.agent_auth.skill));
    const result = await runCheck(service, 'discovery.agent-auth');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/skill must be a URL, got nothing/);
  });

  it('discovery.agent-auth-v07: the claim grant without a claim_endpoint', async () => {
    const service = await broken(editDocument(AS, (body) => delete body.agent_auth.claim_endpoint));
    const result = await runCheck(service, 'discovery.agent-auth-v07');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/lists urn:workos:agent-auth:grant-type:claim, but agent_auth\.claim_endpoint is nothing/);
  });

  it('discovery.agent-auth-v01: register_uri without claim_uri or the credential types of anonymous registration', async () => {
    const service = await broken(
      editDocument(AS, (body) => {
        delete body.agent_auth.claim_uri;
        delete body.agent_auth.anonymous;
      }),
    );
    const result = await runCheck(service, 'discovery.agent-auth-v01');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/claim_uri must be a URL, got nothing/);
    expect(result.message).toMatch(/anonymous\.credential_types_supported must name its credentials/);
  });

  it('discovery.agent-auth-v01: a service that takes ID-JAGs on v0.1 without revocation_uri, and a revocation_uri that is not a URL', async () => {
    const { service } = await startWithProvider(() => editDocument(AS, (body) => delete body.agent_auth.revocation_uri));
    const result = await runCheck(service, 'discovery.agent-auth-v01');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/revocation_uri must be a URL \(identity_assertion takes urn:ietf:params:oauth:token-type:id-jag, so providers need their logout endpoint\), got nothing/);

    const untrusting = await broken(editDocument(AS, (body) => (body.agent_auth.revocation_uri = 'not a url')));
    const second = await runCheck(untrusting, 'discovery.agent-auth-v01');
    expect(second.outcome).toBe('fail');
    expect(second.message).toMatch(/revocation_uri must be a URL, got "not a url"/);
  });

  it('discovery.agent-auth-v01 passes without revocation_uri when the service trusts no provider (it is the providers\' logout endpoint)', async () => {
    const service = await broken({});
    const metadata = await (await fetch(`${service.base}${AS}`)).json();
    expect(metadata.agent_auth.revocation_uri).toBeUndefined();
    expect(await runCheck(service, 'discovery.agent-auth-v01')).toMatchObject({ outcome: 'pass' });
  });

  it('discovery.skill: auth.md served as HTML', async () => {
    const service = await broken(editAnswer('/auth.md', (response) => ({ ...response, headers: { ...response.headers, 'content-type': 'text/html; charset=utf-8' } })));
    const result = await runCheck(service, 'discovery.skill');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/expected Content-Type text\/markdown, got "text\/html; charset=utf-8"/);
  });

  it('discovery.skill: auth.md without the Errors and Revocation sections', async () => {
    const service = await broken(
      editAnswer('/auth.md', (response) => ({ ...response, body: Buffer.from(response.body.toString('utf8').replace('## Errors', '## Problems').replace('## Revocation', '## Logout')) })),
    );
    const result = await runCheck(service, 'discovery.skill');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/lacks the standard sections "Errors", "Revocation"/);
  });

  it('discovery.skill: a heading inside a code block does not count', async () => {
    const service = await broken(
      editAnswer('/auth.md', (response) => ({ ...response, body: Buffer.from(response.body.toString('utf8').replace('## Errors', '```\n## Errors\n```')) })),
    );
    const result = await runCheck(service, 'discovery.skill');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/lacks the standard section "Errors"/);
  });

  it('discovery.same-origin: a token endpoint on another origin', async () => {
    const service = await broken(editDocument(AS, (body) => (body.token_endpoint = 'https://tokens.example/oauth2/token')));
    const result = await runCheck(service, 'discovery.same-origin');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/endpoints off the issuer's origin http:\/\/127\.0\.0\.1:\d+: token_endpoint "https:\/\/tokens\.example\/oauth2\/token"/);
  });

  it('discovery.jwks: a private key in the key set', async () => {
    const service = await broken(editDocument(JWKS, (body) => (body.keys[0].d = 'c2VjcmV0')));
    const result = await runCheck(service, 'discovery.jwks');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/key 0 \(kid ".+"\) is private: it has d/);
  });

  it('discovery.jwks: a key set that does not verify the service assertions', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const other = { ...(await exportJWK(publicKey)), kid: 'other-key', alg: 'ES256', use: 'sig' };
    const service = await broken(editDocument(JWKS, (body) => (body.keys = [other])));
    const result = await runCheck(service, 'discovery.jwks');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/the identity assertion of an anonymous registration does not verify against http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json/);
  });

  it('discovery.cache-control: metadata without Cache-Control, or with no-store', async () => {
    const service = await broken({
      response: (request, response) => {
        if (pathOf(request) === PRM_API) return { ...response, headers: without(response.headers, 'cache-control') };
        if (pathOf(request) === AS) return { ...response, headers: { ...response.headers, 'cache-control': 'no-store' } };
        return response;
      },
    });
    const result = await runCheck(service, 'discovery.cache-control');
    expect(result.outcome).toBe('fail');
    expect(result.message).toMatch(/oauth-protected-resource\/api\/notes has nothing/);
    expect(result.message).toMatch(/oauth-authorization-server has "no-store"/);
  });
});

describe('discovery checks against the real service', () => {
  it('every discovery check passes, v0.1 included', async () => {
    const service = await broken({});
    const results = await runChecks(service, ['discovery']);
    expect(results.map((r) => r.id)).toEqual(discoveryChecks.map((check) => check.id));
    for (const result of results) {
      expect({ id: result.id, outcome: result.outcome, message: result.message }).toEqual({ id: result.id, outcome: 'pass', message: undefined });
    }
  });

  it('every discovery check passes against a service that trusts a provider (revocation_uri advertised)', async () => {
    const { provider, service } = await startWithProvider();
    const report = await runConformance({ base: service.base, api: service.api, only: ['discovery'], provider });
    expect(report.results.map((r) => [r.id, r.outcome, r.message])).toEqual(discoveryChecks.map((check) => [check.id, 'pass', undefined]));
    const metadata = await (await fetch(`${service.base}${AS}`)).json();
    expect(metadata.agent_auth.revocation_uri).toBe(`${service.base}/agent/auth/revoke`);
  });

  it('without --api: the API is the resource its metadata names, found from the root (the demo names /api/notes)', async () => {
    const service = await broken({});
    const report = await runConformance({ base: service.base, only: ['discovery.challenge', 'discovery.prm-resource', 'revocation.access-token'], providerPort: false });
    expect(report.results.map((result) => [result.id, result.outcome, result.message])).toEqual([
      ['discovery.challenge', 'pass', undefined],
      ['discovery.prm-resource', 'pass', undefined],
      ['revocation.access-token', 'pass', undefined],
    ]);
  });

  it('without --api, a resource that answers without a token: the checks that call the API are skipped, naming the flag to pass', async () => {
    const service = await broken(editPrm((body, request) => (body.resource = `http://${request.headers.host}`)));
    const report = await runConformance({ base: service.base, only: ['discovery.challenge', 'revocation.access-token'], providerPort: false });
    for (const result of report.results) {
      expect(result, result.id).toMatchObject({
        outcome: 'skip',
        message: expect.stringMatching(/the metadata's resource http:\/\/127\.0\.0\.1:\d+ answers 200 \(text\/html; charset=utf-8\) without a token, not 401\. Pass --api <URL of an endpoint of the protected API that answers 401 without a token>/),
      });
    }
  });

  it('discovery.as-issuer tolerates a terminating slash, as clients do', async () => {
    const service = await broken(editDocument(AS, (body) => (body.issuer = `${body.issuer}/`)));
    expect((await runCheck(service, 'discovery.as-issuer')).outcome).toBe('pass');
  });

  it('discovery.jwks is skipped when the service publishes no jwks_uri', async () => {
    const service = await broken(editDocument(AS, (body) => delete body.jwks_uri));
    expect(await runCheck(service, 'discovery.jwks')).toMatchObject({ outcome: 'skip', message: expect.stringMatching(/advertises no jwks_uri/) });
  });
});
