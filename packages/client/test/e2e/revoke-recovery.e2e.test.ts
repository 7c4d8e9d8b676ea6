import { describe, expect, it } from 'vitest';
import { E2E_TIMEOUT, exchanges, postForm, recordingClient, registrations, startE2eDemo, statusOf } from './support.ts';

/**
 * Issue 5, "Done when": 401 recovery after a revoke. The access token the client holds is revoked at
 * the service's RFC 7009 endpoint behind its back; the next `client.fetch` meets a 401, re-exchanges
 * its identity assertion once, and succeeds with the new token.
 */
describe('401 recovery after a revoke', () => {
  it(
    'one 401, exactly one extra jwt-bearer exchange, then 200; no new registration',
    async () => {
      const demo = await startE2eDemo();
      const { client, store, sent } = recordingClient();
      expect(await statusOf(await client.fetch(demo.api))).toBe(200);
      expect(exchanges(sent)).toHaveLength(1);
      const revokedToken = (await store.get(demo.url))!.access_token!.value;

      // Behind the client's back.
      const revoked = await postForm(`${demo.url}/oauth2/revoke`, { token: revokedToken, token_type_hint: 'access_token' });
      expect(revoked.status).toBe(200);
      expect(demo.logger.audit('token.revoked')).toHaveLength(1);
      const direct = await globalThis.fetch(demo.api, { headers: { authorization: `Bearer ${revokedToken}` } });
      expect(await statusOf(direct), 'the token is really dead').toBe(401);
      const before = sent.length;

      const recovered = await client.fetch(demo.api);
      expect(recovered.status).toBe(200);
      expect(await recovered.json()).toEqual({ notes: [] });

      const after = sent.slice(before);
      expect(after.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual(['GET /api/notes', 'POST /oauth2/token', 'GET /api/notes']);
      expect(after[0]!.authorization).toBe(`Bearer ${revokedToken}`);
      expect(exchanges(sent), 'exactly one extra exchange').toHaveLength(2);
      const fresh = (await store.get(demo.url))!.access_token!.value;
      expect(fresh).not.toBe(revokedToken);
      expect(after[2]!.authorization).toBe(`Bearer ${fresh}`);
      expect(registrations(sent)).toHaveLength(1);
      expect(demo.logger.audit('registration.created')).toHaveLength(1);

      // And the new token is kept: the next call needs no exchange.
      expect(await statusOf(await client.fetch(demo.api))).toBe(200);
      expect(exchanges(sent)).toHaveLength(2);
    },
    E2E_TIMEOUT,
  );
});
