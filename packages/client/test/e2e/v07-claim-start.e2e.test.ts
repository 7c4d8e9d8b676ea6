import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/index.ts';
import { discoveryAnswer, startScriptedService, type SeenRequest } from './scripted-service.ts';
import { E2E_TIMEOUT } from './support.ts';

/**
 * Issue 5, Build 3: the ceremony "whichever the service speaks". A service of the v0.7 generation
 * (protocol-reference §3: the claim grant, no `refresh` identity type — the client itself reads it
 * as type-in only) starts a claim with `{type:"login_hint", claim_token, login_hint}`; its union has
 * no `service_auth` member (that is the LATEST body, §2.4), so any other type is a 400
 * invalid_request. This server answers like the v0.7 reference does.
 */
describe('claim start at a v0.7 service', () => {
  it(
    'an anonymous registration claimed by email sends the v0.7 body {type:"login_hint"} and gets the type-in hand-off',
    async () => {
      const claimStarts: SeenRequest['body'][] = [];
      const service = await startScriptedService((request, base) => {
        const discovered = discoveryAnswer(request, base);
        if (discovered) return discovered;
        if (request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'anonymous') {
          return {
            status: 200,
            body: {
              registration_id: 'reg_v07',
              registration_type: 'anonymous',
              identity_assertion: 'eyJ.v07.assertion',
              assertion_expires: new Date(Date.now() + 3_600_000).toISOString(),
              pre_claim_scopes: ['notes.read'],
              claim_url: `${base}/agent/identity/claim`,
              claim_token: 'clm_v07',
              claim_token_expires: new Date(Date.now() + 86_400_000).toISOString(),
              post_claim_scopes: ['notes.read', 'notes.write'],
            },
          };
        }
        if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.jwtBearer) {
          return { status: 200, body: { access_token: 'at_v07', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' } };
        }
        if (request.method === 'POST' && request.path === '/agent/identity/claim') {
          claimStarts.push(request.body);
          if (request.body.type !== 'login_hint' && request.body.type !== 'identity_assertion') {
            return { status: 400, body: { error: 'invalid_request', message: 'type: Invalid discriminator value. Expected \'login_hint\' | \'identity_assertion\'' } };
          }
          return {
            status: 200,
            body: {
              registration_id: 'reg_v07',
              claim_attempt_id: 'cla_1',
              status: 'initiated',
              expires_at: new Date(Date.now() + 600_000).toISOString(),
              claim_attempt: { user_code: '424242', expires_in: 600, verification_uri: `${base}/claim?claim_attempt_token=cvt_1`, interval: 5 },
            },
          };
        }
        return undefined;
      });

      const client = new AgentClient();
      expect(await client.authenticate({ url: service.base })).toMatchObject({ status: 'ready', registration_id: 'reg_v07', registration_type: 'anonymous', claimed: false });
      const outcome = await client.authenticate({ url: service.base, email: 'ada@example.com' }).catch((error: unknown) => error);

      expect(claimStarts).toHaveLength(1);
      expect(claimStarts[0]).toEqual({ type: 'login_hint', claim_token: 'clm_v07', login_hint: 'ada@example.com' });
      expect(outcome).toMatchObject({ status: 'claim_required', registration_id: 'reg_v07', user_code: '424242' });
    },
    E2E_TIMEOUT,
  );
});
