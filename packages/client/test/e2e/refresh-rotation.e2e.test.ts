import { describe, expect, it } from 'vitest';
import { claimByReadBack, E2E_TIMEOUT, exchanges, expireStoredAssertion, notePost, postJson, recordingClient, registrations, startE2eDemo, statusOf } from './support.ts';

/**
 * Issue 5, "Done when": refresh rotation. A read-back claim hands over a refresh token. When the
 * stored identity assertion has expired and no access token is left, `authenticate` rotates the
 * refresh token (`type: "refresh"`), stores the new one, and exchanges the new assertion; the old
 * refresh token is spent at the service.
 */
describe('refresh rotation', () => {
  it(
    'an expired assertion and no access token → refresh: new refresh token stored, the old one refused as invalid_refresh_token',
    async () => {
      const demo = await startE2eDemo();
      const { client, store, sent } = recordingClient();
      const claim = await claimByReadBack(client, demo, 'ada@example.com');
      const claimed = (await store.get(demo.url))!;
      const oldRefresh = claimed.identity!.refresh_token!.value;
      const oldAssertion = claimed.identity!.assertion;
      expect(oldRefresh).toMatch(/\S/);

      // The assertion is past its time (as far as the client can tell) and the access token is gone.
      await expireStoredAssertion(store, demo.url);
      const exchangesBefore = exchanges(sent).length;

      const ready = await client.authenticate({ url: demo.url });
      expect(ready).toMatchObject({ status: 'ready', registration_id: claim.registration_id, registration_type: 'service_auth', claimed: true });
      const refreshes = sent.filter((r) => r.url === `${demo.url}/agent/identity` && r.body.type === 'refresh');
      expect(refreshes.map((r) => r.body)).toEqual([{ type: 'refresh', refresh_token: oldRefresh }]);
      expect(demo.logger.audit('assertion.refreshed').map((e) => e.registration_id)).toEqual([claim.registration_id]);
      expect(exchanges(sent).length, 'the new assertion exchanged once').toBe(exchangesBefore + 1);
      expect(exchanges(sent).at(-1)!.body.assertion).not.toBe(oldAssertion);
      expect(registrations(sent)).toHaveLength(1);

      const rotated = (await store.get(demo.url))!;
      expect(rotated.identity!.refresh_token!.value).toMatch(/\S/);
      expect(rotated.identity!.refresh_token!.value).not.toBe(oldRefresh);
      expect(rotated.identity!.assertion).not.toBe(oldAssertion);
      expect(Date.parse(rotated.identity!.expires_at)).toBeGreaterThan(Date.now());
      expect(rotated.access_token?.value).toBe((ready as { access_token: string }).access_token);
      expect(rotated).toMatchObject({ registration_id: claim.registration_id, registration_type: 'service_auth', claimed: true });
      expect(await statusOf(await client.fetch(demo.api, notePost('after a refresh')))).toBe(201);

      // The old refresh token is spent.
      const replay = await postJson(`${demo.url}/agent/identity`, { type: 'refresh', refresh_token: oldRefresh });
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('invalid_refresh_token');
    },
    E2E_TIMEOUT,
  );
});
