import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/index.ts';
import { anonymousRegistration, challenge, discoveryAnswer, startScriptedService } from './scripted-service.ts';
import { E2E_TIMEOUT } from './support.ts';

/**
 * The other side of 401 recovery (AUTH.md retry policy, issue 5 Build 4): `fetch` re-exchanges
 * once. An API that keeps answering 401 to fresh tokens gets its 401 passed back to the caller after
 * one retry — no loop of exchanges, no new registration.
 */
describe('fetch: one re-exchange on a 401, not more', () => {
  it(
    'an API that refuses every token: two bearer attempts, two exchanges, one registration, the 401 returned',
    async () => {
      let issued = 0;
      const service = await startScriptedService((request, base) => {
        const discovered = discoveryAnswer(request, base);
        if (discovered) return discovered;
        if (request.path === '/api/things') {
          return challenge(base, 'Invalid, expired, or revoked credential.');
        }
        if (request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'anonymous') {
          return anonymousRegistration(base);
        }
        if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.jwtBearer) {
          issued += 1;
          return { status: 200, body: { access_token: `at_${issued}`, token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' } };
        }
        return undefined;
      });

      const response = await new AgentClient().fetch(`${service.base}/api/things`);
      expect(response.status).toBe(401);
      const apiCalls = service.seen.filter((r) => r.path === '/api/things');
      expect(apiCalls.map((r) => r.authorization)).toEqual([undefined, 'Bearer at_1', 'Bearer at_2']);
      expect(issued).toBe(2);
      expect(service.seen.filter((r) => r.path === '/agent/identity')).toHaveLength(1);
    },
    E2E_TIMEOUT,
  );
});
