import { describe, expect, it } from 'vitest';
import { AgentClient, type ClaimRequiredResult } from '../../src/index.ts';
import { type Demo, E2E_TIMEOUT, notePost, person, recordingFetch, recordingPrompt, registrations, startE2eDemo, statusOf, stopAfterTest } from './support.ts';

/**
 * Issue 5, "Done when": anonymous, then claim by email in both directions. `authenticate({email})`
 * on the client that registered anonymously upgrades that registration (a claim start on it, not a
 * new registration); the human finishes by reading the page's code back, or by typing the agent's.
 */

async function anonymousThenEmail(demo: Demo) {
  const { fetch, sent } = recordingFetch();
  const prompt = recordingPrompt();
  const client = new AgentClient({ fetch, prompt });
  expect(await statusOf(await client.fetch(demo.api))).toBe(200);
  expect(await statusOf(await client.fetch(demo.api, notePost('before the claim')))).toBe(403);
  const anonymousId = (await client.status())[demo.url]!.registration_id;

  const claim = await client.authenticate({ url: demo.url, email: 'ada@example.com' });
  expect(claim.status).toBe('claim_required');
  const required = claim as ClaimRequiredResult;
  // The same registration: a claim start, not a second registration.
  expect(required.registration_id).toBe(anonymousId);
  expect(registrations(sent)).toHaveLength(1);
  expect(demo.logger.audit('registration.created')).toHaveLength(1);
  const starts = sent.filter((r) => r.url === `${demo.url}/agent/identity/claim`);
  expect(starts).toHaveLength(1);
  expect(starts[0]!.body).toMatchObject({ type: 'service_auth', login_hint: 'ada@example.com', claim_token: expect.stringMatching(/\S/) });
  expect(demo.logger.audit('claim.requested').map((e) => e.registration_id)).toEqual([anonymousId]);
  // The demo speaks both directions: a link, a code to type, and the read-back option.
  expect(required.verification_uri.startsWith(`${demo.url}/`)).toBe(true);
  expect(required.handoff).toMatchObject({ issuer: demo.url, registrationId: anonymousId, verificationUri: required.verification_uri, readBack: true });
  expect(required.user_code).toMatch(/^\d{6}$/);
  expect(required.handoff.userCode).toBe(required.user_code);
  expect(prompt.shown).toEqual([required.handoff]);
  expect((await client.status())[demo.url]).toMatchObject({ registration_id: anonymousId, registration_type: 'anonymous', claimed: false });
  return { client, sent, required, anonymousId };
}

async function expectClaimed(demo: Demo, client: AgentClient, anonymousId: string) {
  expect(await statusOf(await client.fetch(demo.api, notePost('after the claim')))).toBe(201);
  const record = (await client.status())[demo.url]!;
  expect(record).toMatchObject({ registration_id: anonymousId, registration_type: 'anonymous', claimed: true });
  expect(record.access_token?.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
  expect(demo.logger.audit('claim.confirmed').map((e) => e.registration_id)).toEqual([anonymousId]);
  expect(demo.logger.audit('registration.created')).toHaveLength(1);
  const listed = await client.fetch(demo.api);
  expect(listed.status).toBe(200);
  expect((await listed.json()).notes).toMatchObject([{ text: 'after the claim' }]);
}

describe('anonymous, then claimed by email', () => {
  it(
    'read-back: the human presses Authorize and reads the page code back to completeClaim',
    async () => {
      const demo = await startE2eDemo();
      const { client, required, anonymousId } = await anonymousThenEmail(demo);

      const ada = person(demo.url, 'ada@example.com');
      const pageCode = await ada.readBack(required.verification_uri);
      const ready = await client.completeClaim(demo.url, pageCode);
      expect(ready).toMatchObject({ status: 'ready', token_type: 'Bearer', registration_id: anonymousId, registration_type: 'anonymous', claimed: true });
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect(client.pendingHandoff(demo.url)).toBeUndefined();
      // Read-back's /complete hands over a refresh token; the client keeps it.
      expect((await client.status())[demo.url]!.identity?.refresh_token?.value).toMatch(/\S/);
      await expectClaimed(demo, client, anonymousId);
    },
    E2E_TIMEOUT,
  );

  it(
    "type-in: the human types the agent's code on the page while waitForClaim polls the token endpoint",
    async () => {
      const demo = await startE2eDemo();
      const { client, sent, required, anonymousId } = await anonymousThenEmail(demo);

      // Real time: the demo enforces its 5 s interval (an early poll is slow_down).
      const outcomes: string[] = [];
      const waiting = client.waitForClaim(demo.url, { onPoll: (outcome) => outcomes.push(outcome), signal: stopAfterTest() });
      waiting.catch(() => undefined); // awaited below; no unhandled rejection if the test fails before that
      const ada = person(demo.url, 'ada@example.com');
      await ada.typeIn(required.verification_uri, required.user_code!);
      const ready = await waiting;
      expect(ready).toMatchObject({ status: 'ready', token_type: 'Bearer', registration_id: anonymousId, registration_type: 'anonymous', claimed: true });
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect(outcomes.filter((o) => o !== 'authorization_pending'), 'no slow_down: the client kept the interval').toEqual([]);
      const polls = sent.filter((r) => r.body.grant_type === 'urn:workos:agent-auth:grant-type:claim');
      expect(polls.length).toBeGreaterThanOrEqual(1);
      expect(client.pendingHandoff(demo.url)).toBeUndefined();
      await expectClaimed(demo, client, anonymousId);
    },
    E2E_TIMEOUT,
  );
});
