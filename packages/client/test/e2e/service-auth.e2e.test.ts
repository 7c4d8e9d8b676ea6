import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, type ClaimRequiredResult } from '../../src/index.ts';
import { type Demo, E2E_TIMEOUT, exchanges, notePost, person, recordingFetch, recordingPrompt, registrations, rejectionOf, startE2eDemo, statusOf, stopAfterTest } from './support.ts';

/** Issue 5, "Done when": service_auth (registration by email) in both directions, against the real demo. */

async function registerByEmail(demo: Demo) {
  const { fetch, sent } = recordingFetch();
  const prompt = recordingPrompt();
  const client = new AgentClient({ fetch, prompt });
  const claim = await client.authenticate({ url: demo.url, email: 'grace@example.com' });
  expect(claim.status).toBe('claim_required');
  const required = claim as ClaimRequiredResult;
  expect(registrations(sent).map((r) => r.body)).toEqual([{ type: 'service_auth', login_hint: 'grace@example.com' }]);
  expect(demo.logger.audit('registration.created').map((e) => e.registration_id)).toEqual([required.registration_id]);
  expect(exchanges(sent), 'nothing to exchange before the claim').toEqual([]);
  expect(required.handoff).toMatchObject({ issuer: demo.url, registrationId: required.registration_id, readBack: true, interval: 1 });
  expect(required.user_code).toMatch(/^\d{6}$/);
  expect(prompt.shown).toEqual([required.handoff]);
  expect((await client.status())[demo.url]).toEqual({ registration_id: required.registration_id, registration_type: 'service_auth', claimed: false });

  // Until the human acts, the API is out of reach: fetch says a human is needed.
  const pending = await rejectionOf(client.fetch(demo.api));
  expect(pending).toBeInstanceOf(AuthmdClientError);
  expect(pending.code).toBe('claim_required');
  expect(registrations(sent), 'asking again does not register again').toHaveLength(1);
  return { client, sent, required };
}

async function expectClaimed(demo: Demo, client: AgentClient, registrationId: string) {
  expect(await statusOf(await client.fetch(demo.api, notePost('by grace')))).toBe(201);
  const record = (await client.status())[demo.url]!;
  expect(record).toMatchObject({ registration_id: registrationId, registration_type: 'service_auth', claimed: true });
  expect(record.access_token?.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
  expect(demo.logger.audit('claim.confirmed').map((e) => e.registration_id)).toEqual([registrationId]);
  expect(demo.logger.audit('registration.created')).toHaveLength(1);
}

describe('service_auth: registration by email', () => {
  it(
    'read-back: Authorize on the page, the code read back to completeClaim',
    async () => {
      const demo = await startE2eDemo();
      const { client, required } = await registerByEmail(demo);
      const grace = person(demo.url, 'grace@example.com');
      const pageCode = await grace.readBack(required.verification_uri);
      expect(pageCode).not.toBe(required.user_code);
      const ready = await client.completeClaim(demo.url, pageCode);
      expect(ready).toMatchObject({ status: 'ready', registration_id: required.registration_id, registration_type: 'service_auth', claimed: true });
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect((await client.status())[demo.url]!.identity?.refresh_token?.value).toMatch(/\S/);
      await expectClaimed(demo, client, required.registration_id);
    },
    E2E_TIMEOUT,
  );

  it(
    "type-in: the human types the agent's code, waitForClaim picks the tokens up",
    async () => {
      const demo = await startE2eDemo();
      const { client, required } = await registerByEmail(demo);
      const waiting = client.waitForClaim(demo.url, { signal: stopAfterTest() });
      waiting.catch(() => undefined); // awaited below; no unhandled rejection if the test fails before that
      const grace = person(demo.url, 'grace@example.com');
      await grace.typeIn(required.verification_uri, required.user_code!);
      const ready = await waiting;
      expect(ready).toMatchObject({ status: 'ready', registration_id: required.registration_id, registration_type: 'service_auth', claimed: true });
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect((await client.status())[demo.url]!.identity?.assertion).toMatch(/^ey/);
      await expectClaimed(demo, client, required.registration_id);
    },
    E2E_TIMEOUT,
  );
});
