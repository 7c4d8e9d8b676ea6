import { describe, expect, it } from 'vitest';
import { AgentClient } from '../../src/index.ts';
import { claimByReadBack, E2E_TIMEOUT, exchanges, expireStoredAssertion, recordingClient, recordingFetch, registrations, startE2eDemo } from './support.ts';

/**
 * Parallel requests through one client (an MCP host running tool calls side by side, an agent's
 * Promise.all): the credential work — registering, refreshing — must happen once per service, not
 * once per request. Issue 5, Build 4: "re-register only when all else fails"; refresh tokens rotate
 * one-for-one and the demo treats a second use of one as theft (protocol-reference §2.17).
 */
describe('concurrent requests through one client', () => {
  it(
    'a fresh client: three parallel fetches make one anonymous registration',
    async () => {
      const demo = await startE2eDemo();
      const { fetch, sent } = recordingFetch();
      const client = new AgentClient({ fetch });
      const responses = await Promise.all([client.fetch(demo.api), client.fetch(demo.api), client.fetch(demo.api)]);
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(registrations(sent), 'registrations sent').toHaveLength(1);
      expect(demo.logger.audit('registration.created'), 'registrations at the service').toHaveLength(1);
    },
    E2E_TIMEOUT,
  );

  it(
    'a claimed client whose assertion has expired: two parallel fetches refresh once and both succeed (the registration survives)',
    async () => {
      const demo = await startE2eDemo();
      const { client, store, sent } = recordingClient();
      await claimByReadBack(client, demo, 'ada@example.com');
      await expireStoredAssertion(store, demo.url);
      const before = sent.length;

      const outcomes = await Promise.allSettled([client.fetch(demo.api), client.fetch(demo.api)]);
      const summary = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.status : (o.reason as { code?: string }).code));
      const refreshes = sent.slice(before).filter((r) => r.body.type === 'refresh');
      expect(refreshes.map((r) => r.body.refresh_token), 'one refresh token presented once').toHaveLength(1);
      expect(summary).toEqual([200, 200]);
      expect(exchanges(sent.slice(before))).toHaveLength(1);
      // And it still works afterwards.
      expect((await client.fetch(demo.api)).status).toBe(200);
    },
    E2E_TIMEOUT,
  );
});
