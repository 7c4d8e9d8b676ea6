import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError } from '../../src/index.ts';
import { anonymousRegistration, discoveryAnswer, startScriptedService, type Answer } from './scripted-service.ts';
import { E2E_TIMEOUT } from './support.ts';

/**
 * AUTH.md's agent retry policy (protocol-reference §2.16; issue 5 Build 4): a 5xx is retried with
 * exponential backoff, the same request each time; a 4xx is never repeated, and reaches the caller
 * as a typed error with the service's code.
 */

/** A service whose registration endpoint answers `failures` in turn, then succeeds. */
async function serviceFailingWith(failures: Answer[]) {
  const queue = [...failures];
  const service = await startScriptedService((request, base) => {
    const discovered = discoveryAnswer(request, base);
    if (discovered) return discovered;
    if (request.method === 'POST' && request.path === '/agent/identity') return queue.shift() ?? anonymousRegistration(base);
    if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.jwtBearer) {
      return { status: 200, body: { access_token: 'at_scripted', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read' } };
    }
    return undefined;
  });
  const registrations = () => service.seen.filter((request) => request.path === '/agent/identity');
  return { service, registrations };
}

function clientRecordingSleeps(): { client: AgentClient; sleeps: number[] } {
  const sleeps: number[] = [];
  const client = new AgentClient({ sleep: async (ms) => void sleeps.push(ms) });
  return { client, sleeps };
}

const unavailable: Answer = { status: 503, body: { error: 'temporarily_unavailable', message: 'Down for a moment.' } };

describe('retry policy', () => {
  it(
    '5xx: the same registration is sent again after 0.5 s, then 1 s, and the third answer is used',
    async () => {
      const { service, registrations } = await serviceFailingWith([unavailable, { status: 500, body: 'oops' }]);
      const { client, sleeps } = clientRecordingSleeps();

      const result = await client.authenticate({ url: service.base });

      expect(result).toMatchObject({ status: 'ready', access_token: 'at_scripted', registration_id: 'reg_scripted' });
      expect(registrations()).toHaveLength(3);
      expect(new Set(registrations().map((request) => JSON.stringify(request.body))).size).toBe(1);
      expect(sleeps).toEqual([500, 1000]);
    },
    E2E_TIMEOUT,
  );

  it(
    '5xx that persists: four tries with 0.5/1/2 s between them, then a server error that says so',
    async () => {
      const { service, registrations } = await serviceFailingWith(Array(10).fill(unavailable));
      const { client, sleeps } = clientRecordingSleeps();

      const error = await client.authenticate({ url: service.base }).catch((caught: unknown) => caught);

      expect(error).toBeInstanceOf(AuthmdClientError);
      expect(error).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      expect((error as Error).message).toContain('Down for a moment.');
      expect(registrations()).toHaveLength(4);
      expect(sleeps).toEqual([500, 1000, 2000]);
    },
    E2E_TIMEOUT,
  );

  it(
    '4xx: not repeated; the protocol code and the service description reach the caller',
    async () => {
      const refusal: Answer = { status: 400, body: { error: 'invalid_request', message: 'type must be one of anonymous, service_auth.' } };
      const { service, registrations } = await serviceFailingWith([refusal, refusal]);
      const { client, sleeps } = clientRecordingSleeps();

      const error = await client.authenticate({ url: service.base }).catch((caught: unknown) => caught);

      expect(error).toMatchObject({ code: 'invalid_request', status: 400 });
      expect((error as Error).message).toContain('type must be one of anonymous, service_auth.');
      expect(registrations()).toHaveLength(1);
      expect(sleeps).toEqual([]);
    },
    E2E_TIMEOUT,
  );

  it(
    '429: not repeated; the error carries retry_after and says how long to wait',
    async () => {
      const limited: Answer = {
        status: 429,
        body: { error: 'rate_limit_exceeded', retry_after: 42 },
        headers: { 'retry-after': '42' },
      };
      const { service, registrations } = await serviceFailingWith([limited]);
      const { client } = clientRecordingSleeps();

      const error = await client.authenticate({ url: service.base }).catch((caught: unknown) => caught);

      expect(error).toMatchObject({ code: 'rate_limit_exceeded', status: 429, details: { retryAfterSeconds: 42 } });
      expect((error as Error).message).toMatch(/Wait and try again later\. Retry after 42 s\.$/);
      expect(registrations()).toHaveLength(1);
    },
    E2E_TIMEOUT,
  );
});
