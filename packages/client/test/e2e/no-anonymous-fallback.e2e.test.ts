import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, MemoryCredentialStore } from '../../src/index.ts';
import { claimByReadBack, E2E_TIMEOUT, postJson, recordingClient, recordingFetch, registrations, rejectionOf, startE2eDemo, statusOf } from './support.ts';

/**
 * protocol-reference §6.2: the client never silently falls back to an anonymous registration when
 * the stored one belongs to a user. With its assertion and refresh token dead, `authenticate()`
 * without an email or an ID-JAG fails with `reauthentication_required`, and the service sees no
 * registration.
 */
describe('no silent fallback to anonymous', () => {
  it(
    'a claimed registration killed at the service (refresh token replayed → family, assertions and tokens revoked): fetch and authenticate refuse',
    async () => {
      const demo = await startE2eDemo();
      const { client, store, sent } = recordingClient();
      // Anonymous, then claimed by ada: the stored record says type anonymous, claimed true.
      expect(await statusOf(await client.fetch(demo.api))).toBe(200);
      await claimByReadBack(client, demo, 'ada@example.com');
      const claimed = (await store.get(demo.url))!;
      expect(claimed).toMatchObject({ registration_type: 'anonymous', claimed: true });

      // Someone replays the refresh token: the service burns the family, the assertions and the access tokens.
      const refreshToken = claimed.identity!.refresh_token!.value;
      expect((await postJson(`${demo.url}/agent/identity`, { type: 'refresh', refresh_token: refreshToken })).status).toBe(200);
      const replay = await postJson(`${demo.url}/agent/identity`, { type: 'refresh', refresh_token: refreshToken });
      expect(replay.body.error).toBe('invalid_refresh_token');
      expect(await statusOf(await globalThis.fetch(demo.api, { headers: { authorization: `Bearer ${claimed.access_token!.value}` } }))).toBe(401);
      const createdBefore = demo.logger.audit('registration.created').length;
      expect(createdBefore).toBe(1);

      const refused = await rejectionOf(client.fetch(demo.api));
      expect(refused).toBeInstanceOf(AuthmdClientError);
      expect(refused.code).toBe('reauthentication_required');
      const again = await rejectionOf(client.authenticate({ url: demo.url }));
      expect(again).toBeInstanceOf(AuthmdClientError);
      expect(again.code).toBe('reauthentication_required');

      expect(registrations(sent).map((r) => r.body.type), 'only the first, anonymous registration').toEqual(['anonymous']);
      expect(demo.logger.audit('registration.created')).toHaveLength(createdBefore);
      expect((await store.get(demo.url))!).toMatchObject({ registration_id: claimed.registration_id, registration_type: 'anonymous', claimed: true });
    },
    E2E_TIMEOUT,
  );

  it(
    'a stored user-bound registration (after a restart: no claim token in memory) whose assertion and refresh token have expired',
    async () => {
      const demo = await startE2eDemo();
      const past = new Date(Date.now() - 3_600_000).toISOString();
      for (const [registration_type, claimed] of [
        ['service_auth', true],
        ['identity_assertion', true],
        ['service_auth', false],
      ] as const) {
        const store = new MemoryCredentialStore({
          [demo.url]: {
            registration_id: 'reg_from_an_earlier_run',
            registration_type,
            claimed,
            identity: { assertion: 'eyJ.expired.assertion', expires_at: past, refresh_token: { value: 'art_expired', expires_at: past } },
          },
        });
        const { fetch, sent } = recordingFetch();
        const client = new AgentClient({ fetch, store });
        const refused = await rejectionOf(client.authenticate({ url: demo.url }));
        expect(refused, `${registration_type} claimed=${claimed}`).toBeInstanceOf(AuthmdClientError);
        expect(refused.code).toBe('reauthentication_required');
        expect(registrations(sent)).toEqual([]);
        expect((await store.get(demo.url))!.registration_id).toBe('reg_from_an_earlier_run');
      }
      expect(demo.logger.audit('registration.created')).toEqual([]);
    },
    E2E_TIMEOUT,
  );
});
