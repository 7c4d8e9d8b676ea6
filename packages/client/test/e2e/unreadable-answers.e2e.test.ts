import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError } from '../../src/index.ts';
import { anonymousRegistration, authorizationServerMetadata, discoveryAnswer, protectedResourceMetadata, startScriptedService, type Answer, type SeenRequest } from './scripted-service.ts';
import { E2E_TIMEOUT } from './support.ts';

/**
 * Answers that do not read as auth.md (issue 14, typed wire readers): the client refuses them with its
 * own error, `invalid_response`, whose message names the member the reader refused, and goes no further.
 */

const isPost = (request: SeenRequest, path: string) => request.method === 'POST' && request.path === path;
const bearer = { access_token: 'at_scripted', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' };

async function refusal(client: AgentClient, url: string): Promise<AuthmdClientError> {
  const outcome = await client.authenticate({ url }).then(
    (result) => result,
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(AuthmdClientError);
  return outcome as AuthmdClientError;
}

describe('answers that do not read as auth.md', () => {
  it(
    'a registration without its id',
    async () => {
      const service = await startScriptedService((request, base) => {
        const discovered = discoveryAnswer(request, base);
        if (discovered) return discovered;
        if (isPost(request, '/agent/identity')) {
          const answer = anonymousRegistration(base);
          const { id: _missing, ...body } = answer.body as Record<string, unknown>;
          return { ...answer, body };
        }
        if (isPost(request, '/oauth2/token')) return { status: 200, body: bearer };
        return undefined;
      });
      const error = await refusal(new AgentClient(), service.base);
      expect(error.code).toBe('invalid_response');
      expect(error.message).toMatch(/^Registering anonymously: the service answered 200 with a body that does not read as auth\.md \(.*registration_id: is required/);
      expect(error.details).toMatchObject({ status: 200 });
      expect(service.seen.filter((request) => isPost(request, '/oauth2/token'))).toEqual([]);
    },
    E2E_TIMEOUT,
  );

  it(
    'a token response whose token is not a Bearer token',
    async () => {
      const service = await startScriptedService((request, base) => {
        const discovered = discoveryAnswer(request, base);
        if (discovered) return discovered;
        if (isPost(request, '/agent/identity')) return anonymousRegistration(base);
        if (isPost(request, '/oauth2/token') && request.body.grant_type === grantTypes.jwtBearer) return { status: 200, body: { ...bearer, token_type: 'mac' } };
        return undefined;
      });
      const client = new AgentClient();
      const error = await refusal(client, service.base);
      expect(error.code).toBe('invalid_response');
      expect(error.message).toBe('Exchanging the identity assertion: the service answered 200 with a body that does not read as auth.md (token_type: must be Bearer).');
      expect((await client.status())[service.base]?.access_token).toBeUndefined();
    },
    E2E_TIMEOUT,
  );

  it(
    'a v0.1 credential without its type',
    async () => {
      const v01Metadata = (base: string): Answer => ({
        status: 200,
        body: authorizationServerMetadata(base, {
          grant_types_supported: [grantTypes.jwtBearer],
          agent_auth: { register_uri: `${base}/agent/auth`, claim_uri: `${base}/agent/auth/claim`, anonymous: { credential_types_supported: ['api_key'] } },
        }),
      });
      const service = await startScriptedService((request, base) => {
        if (request.method === 'GET' && request.path === '/.well-known/oauth-protected-resource') return { status: 200, body: protectedResourceMetadata(base) };
        if (request.method === 'GET' && request.path === '/.well-known/oauth-authorization-server') return v01Metadata(base);
        if (isPost(request, '/agent/auth')) {
          return { status: 200, body: { registration_id: 'reg_v01', registration_type: 'anonymous', credential: 'sk_1', credential_expires: null, scopes: ['notes.read'] } };
        }
        return undefined;
      });
      const client = new AgentClient();
      expect((await client.discover(service.base)).dialect).toBe('v0.1');
      const error = await refusal(client, service.base);
      expect(error.code).toBe('invalid_response');
      expect(error.message).toBe('Registering anonymously: the service answered 200 with a body that does not read as auth.md (credential_type: is required with credential).');
      expect((await client.status())[service.base]).toBeUndefined();
    },
    E2E_TIMEOUT,
  );
});
