import { describe, expect, it } from 'vitest';
import { AgentClient, type ClaimRequiredResult } from '../../src/index.ts';
import { E2E_TIMEOUT, exchanges, person, recordingFetch, startE2eDemo, statusOf, stopAfterTest } from './support.ts';

/**
 * Issue 5, Build 4: "reuse a live access token". The type-in ceremony ends with a token response
 * from the claim-grant poll (an access token for the resource the poll named); the next request must
 * use it, not exchange the assertion for another one.
 */
describe('after a type-in claim', () => {
  it(
    'the access token the poll handed over is reused by the next fetch (no jwt-bearer exchange)',
    async () => {
      const demo = await startE2eDemo();
      const { fetch, sent } = recordingFetch();
      const client = new AgentClient({ fetch });
      const claim = (await client.authenticate({ url: demo.url, email: 'grace@example.com' })) as ClaimRequiredResult;
      const waiting = client.waitForClaim(demo.url, { signal: stopAfterTest() });
      waiting.catch(() => undefined); // awaited below; no unhandled rejection if the test fails before that
      await person(demo.url, 'grace@example.com').typeIn(claim.verification_uri, claim.user_code!);
      const ready = await waiting;

      expect((await client.status())[demo.url]!.access_token!.value).toBe(ready.access_token);

      const response = await client.fetch(demo.api);
      expect(await statusOf(response)).toBe(200);
      expect(sent.at(-1)!.authorization).toBe(`Bearer ${ready.access_token}`);
      expect(exchanges(sent), 'the live token from the poll is reused').toEqual([]);
    },
    E2E_TIMEOUT,
  );
});
