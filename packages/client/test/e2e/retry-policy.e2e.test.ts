import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, MemoryCredentialStore } from '../../src/index.ts';
import { anonymousRegistration, discoveryAnswer, startScriptedService, type Answer } from './scripted-service.ts';
import { E2E_TIMEOUT, rejectionOf } from './support.ts';

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

  it(
    'a refresh (it spends the token) answered 500 is not sent again, since it may have been processed: the token is dropped and the caller told to authenticate again',
    async () => {
      const { service, refreshes, store, client, sleeps } = await refreshingAgainst([{ status: 500, body: { error: 'server_error', message: 'Something broke.' } }]);

      const error = await rejectionOf(client.authenticate({ url: service.base }));

      expect(error).toMatchObject({ code: 'reauthentication_required' });
      expect(error.message).toMatch(/answer to the refresh .* was lost \(Refreshing the identity failed \(500 server_error\)/);
      expect(refreshes()).toHaveLength(1);
      expect(sleeps).toEqual([]);
      expect((await store.get(service.base))!.identity!.refresh_token).toBeUndefined();
    },
    E2E_TIMEOUT,
  );

  it(
    'a refresh answered 503 with Retry-After (not processed) is sent again after the time asked; one that persists keeps the token unspent',
    async () => {
      const later: Answer = { status: 503, body: { error: 'temporarily_unavailable', message: 'Down for a moment.' }, headers: { 'retry-after': '2' } };
      const once = await refreshingAgainst([later]);
      expect(await once.client.authenticate({ url: once.service.base })).toMatchObject({ status: 'ready', access_token: 'at_scripted' });
      expect(once.refreshes().map((request) => request.body.refresh_token)).toEqual(['art_scripted', 'art_scripted']);
      expect(once.sleeps).toEqual([2000]);
      expect((await once.store.get(once.service.base))!.identity!.refresh_token!.value).toBe('art_rotated');

      const always = await refreshingAgainst(Array(10).fill(later));
      const error = await rejectionOf(always.client.authenticate({ url: always.service.base }));
      expect(error).toMatchObject({ code: 'temporarily_unavailable', status: 503 });
      expect(always.refreshes()).toHaveLength(4);
      expect(always.sleeps).toEqual([2000, 2000, 2000]);
      expect((await always.store.get(always.service.base))!.identity!.refresh_token!.value, 'kept: it was never processed').toBe('art_scripted');
    },
    E2E_TIMEOUT,
  );
});

/** A client holding a refresh token and an expired assertion, against a service whose refresh answers `failures` in turn, then rotates. */
async function refreshingAgainst(failures: Answer[]) {
  const queue = [...failures];
  const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();
  const service = await startScriptedService((request, base) => {
    const discovered = discoveryAnswer(request, base);
    if (discovered) return discovered;
    if (request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'refresh') {
      return queue.shift() ?? { status: 200, body: { id: 'reg_scripted', identity: { assertion: 'eyJ.rotated.assertion', expires_at: inAnHour(), refresh_token: { value: 'art_rotated', expires_at: inAnHour() } } } };
    }
    if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.jwtBearer) {
      return { status: 200, body: { access_token: 'at_scripted', token_type: 'Bearer', expires_in: 3600, scope: 'notes.read notes.write' } };
    }
    return undefined;
  });
  const store = new MemoryCredentialStore();
  await store.update(service.base, () => ({
    registration_id: 'reg_scripted',
    registration_type: 'service_auth',
    claimed: true,
    identity: { assertion: 'eyJ.expired.assertion', expires_at: new Date(Date.now() - 60_000).toISOString(), refresh_token: { value: 'art_scripted', expires_at: inAnHour() } },
  }));
  const sleeps: number[] = [];
  const client = new AgentClient({ store, sleep: async (ms) => void sleeps.push(ms) });
  const refreshes = () => service.seen.filter((request) => request.path === '/agent/identity' && request.body.type === 'refresh');
  return { service, store, client, sleeps, refreshes };
}
