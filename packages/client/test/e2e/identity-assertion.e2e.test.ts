import { describe, expect, it } from 'vitest';
import { AgentClient, sampleProviderSource, type ClaimRequiredResult } from '../../src/index.ts';
import { E2E_TIMEOUT, grantConsent, notePost, person, providerSession, recordingFetch, recordingPrompt, registrations, startE2eDemo, statusOf } from './support.ts';

/**
 * Issue 5, "Done when": identity_assertion, clean and step-up, with ID-JAGs minted by the real demo
 * provider (its sample JSON API, through `sampleProviderSource`) for the real demo service.
 */
describe('identity_assertion', () => {
  it(
    'clean: a user new to the service (JIT) with consent at the provider is ready at once with post-claim scopes',
    async () => {
      const demo = await startE2eDemo();
      const session = await providerSession(demo.providerUrl, 'grace@example.com');
      await grantConsent(demo.providerUrl, session, demo.url);
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const client = new AgentClient({ fetch, prompt, idJag: sampleProviderSource({ providerUrl: demo.providerUrl, sessionToken: session }) });

      const result = await client.authenticate({ url: demo.url });
      expect(result).toMatchObject({ status: 'ready', token_type: 'Bearer', registration_type: 'identity_assertion', claimed: true });
      if (result.status !== 'ready') throw new Error('unreachable');
      expect(result.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect(registrations(sent).map((r) => r.body.type)).toEqual(['identity_assertion']);
      expect(registrations(sent)[0]!.body.assertion_type).toBe('urn:ietf:params:oauth:token-type:id-jag');
      expect(prompt.shown, 'no human needed').toEqual([]);
      expect(demo.logger.audit('registration.created').map((e) => e.registration_id)).toEqual([result.registration_id]);

      expect(await statusOf(await client.fetch(demo.api, notePost('by grace, via her provider')))).toBe(201);
      expect((await client.status())[demo.url]).toMatchObject({ registration_id: result.registration_id, registration_type: 'identity_assertion', claimed: true });
    },
    E2E_TIMEOUT,
  );

  it(
    'step-up: an ID-JAG for an existing account needs that human once (read-back); a fresh ID-JAG afterwards is ready at once',
    async () => {
      const demo = await startE2eDemo();
      // Ada has an account at the service: she claimed an agent by email before.
      const first = new AgentClient();
      const byEmail = (await first.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      expect(byEmail.status).toBe('claim_required');
      const ada = person(demo.url, 'ada@example.com');
      expect((await first.completeClaim(demo.url, await ada.readBack(byEmail.verification_uri))).claimed).toBe(true);

      // Another agent, on ada's agent platform: the provider vouches for her.
      const session = await providerSession(demo.providerUrl, 'ada@example.com');
      await grantConsent(demo.providerUrl, session, demo.url);
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const agent = new AgentClient({ fetch, prompt, idJag: sampleProviderSource({ providerUrl: demo.providerUrl, sessionToken: session }) });

      const stepUp = await agent.authenticate({ url: demo.url });
      expect(stepUp.status, 'interaction_required → the human confirms').toBe('claim_required');
      const required = stepUp as ClaimRequiredResult;
      expect(required.handoff.readBack).toBe(true);
      expect(prompt.shown).toEqual([required.handoff]);
      expect((await agent.status())[demo.url]).toMatchObject({ registration_id: required.registration_id, registration_type: 'identity_assertion', claimed: false });
      expect(registrations(sent).map((r) => r.body.type)).toEqual(['identity_assertion']);

      // The page names the provider; ada confirms and reads the code back.
      const page = await ada.open(required.verification_uri);
      expect(page.status, page.html).toBe(200);
      expect(page.html).toMatch(/Link .+ to your account\?/);
      const ready = await agent.completeClaim(demo.url, await ada.readBack(required.verification_uri));
      expect(ready).toMatchObject({ status: 'ready', registration_id: required.registration_id, registration_type: 'identity_assertion', claimed: true });
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect(await statusOf(await agent.fetch(demo.api, notePost('by ada, via her provider')))).toBe(201);
      expect(demo.logger.audit('claim.confirmed').map((e) => e.registration_id)).toContain(required.registration_id);

      // The link is made: a fresh ID-JAG is a clean match, no ceremony — for this agent registering again…
      const again = await agent.authenticate({ url: demo.url, forceReregister: true });
      expect(again).toMatchObject({ status: 'ready', registration_id: required.registration_id, registration_type: 'identity_assertion', claimed: true });
      expect(registrations(sent)).toHaveLength(2);
      expect(registrations(sent)[1]!.body.assertion).not.toBe(registrations(sent)[0]!.body.assertion);
      // …and for a brand-new agent (empty store) with the same provider account.
      const fresh = new AgentClient({ prompt, idJag: sampleProviderSource({ providerUrl: demo.providerUrl, sessionToken: session }) });
      const clean = await fresh.authenticate({ url: demo.url });
      expect(clean).toMatchObject({ status: 'ready', registration_id: required.registration_id, registration_type: 'identity_assertion', claimed: true });
      expect(prompt.shown, 'no second ceremony').toHaveLength(1);
      expect(await statusOf(await fresh.fetch(demo.api, notePost('again')))).toBe(201);
    },
    E2E_TIMEOUT,
  );
});
