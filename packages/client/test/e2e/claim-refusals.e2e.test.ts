import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, type ClaimRequiredResult } from '../../src/index.ts';
import { E2E_TIMEOUT, person, rejectionOf, startE2eDemo } from './support.ts';

/**
 * The ceremony's refusals against the real demo: an early or wrong read-back code is an error the
 * agent recovers from (the claim stays pending); a Deny on the page ends both directions.
 */
describe('claim refusals', () => {
  it(
    'read-back: completeClaim before Authorize → claim_not_confirmed, a wrong code → invalid_user_code; the right code still works',
    async () => {
      const demo = await startE2eDemo();
      const client = new AgentClient();
      const claim = (await client.authenticate({ url: demo.url, email: 'grace@example.com' })) as ClaimRequiredResult;

      const early = await rejectionOf(client.completeClaim(demo.url, '000000'));
      expect(early).toBeInstanceOf(AuthmdClientError);
      expect(early.code).toBe('claim_not_confirmed');
      expect(client.pendingHandoff(demo.url)).toEqual(claim.handoff);

      const code = await person(demo.url, 'grace@example.com').readBack(claim.verification_uri);
      const wrong = await rejectionOf(client.completeClaim(demo.url, String((Number(code) + 1) % 1_000_000).padStart(6, '0')));
      expect(wrong.code).toBe('invalid_user_code');
      expect(wrong.status).toBe(401);

      expect(await client.completeClaim(demo.url, code)).toMatchObject({ status: 'ready', registration_id: claim.registration_id, claimed: true });
    },
    E2E_TIMEOUT,
  );

  it(
    'Deny on the page: waitForClaim stops with access_denied, completeClaim gets claim_denied',
    async () => {
      const demo = await startE2eDemo();
      const client = new AgentClient();
      const claim = (await client.authenticate({ url: demo.url, email: 'grace@example.com' })) as ClaimRequiredResult;
      await person(demo.url, 'grace@example.com').deny(claim.verification_uri);

      const polled = await rejectionOf(client.waitForClaim(demo.url));
      expect(polled).toBeInstanceOf(AuthmdClientError);
      expect(polled.code).toBe('access_denied');
      const completed = await rejectionOf(client.completeClaim(demo.url, '123456'));
      expect(completed.code).toBe('claim_denied');
      expect((await client.status())[demo.url]).toMatchObject({ registration_id: claim.registration_id, claimed: false });
    },
    E2E_TIMEOUT,
  );
});
