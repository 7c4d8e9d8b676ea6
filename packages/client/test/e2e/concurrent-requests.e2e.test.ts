import { describe, expect, it } from 'vitest';
import { AgentClient, MemoryCredentialStore, type ClaimRequiredResult } from '../../src/index.ts';
import { authorizeOnPage, E2E_TIMEOUT, exchanges, recordingFetch, registrations, signedInHuman, startE2eDemo } from './support.ts';

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
      const store = new MemoryCredentialStore();
      const { fetch, sent } = recordingFetch();
      const client = new AgentClient({ fetch, store });
      const claim = (await client.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      await client.completeClaim(demo.url, await authorizeOnPage(await signedInHuman(demo.url, 'ada@example.com'), claim.verification_uri));
      await store.update(demo.url, (record) => record && { ...record, identity: { ...record.identity!, expires_at: new Date(Date.now() - 60_000).toISOString() }, access_token: undefined });
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
