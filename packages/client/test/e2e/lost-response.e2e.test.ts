import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, MemoryCredentialStore, sampleProviderSource, type ClaimRequiredResult } from '../../src/index.ts';
import { startProxiedDemo, type ProxiedDemo, type ProxiedRequest } from './dropping-proxy.ts';
import {
  claimByReadBack,
  E2E_TIMEOUT,
  expireStoredAssertion,
  grantConsent,
  notePost,
  person,
  providerSession,
  recordingPrompt,
  rejectionOf,
  statusOf,
} from './support.ts';

/**
 * Issue 10: a request that spends something (a refresh token, an ID-JAG, a claim attempt's code) is
 * never sent again after its answer was lost, since the service may have processed it; the client
 * recovers through the protocol instead. The answers are lost for real: a TCP proxy in front of the
 * real demo lets the service process the request, then cuts the client's connection.
 */

const isRefresh = (request: ProxiedRequest) => request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'refresh';
const isIdJagRegistration = (request: ProxiedRequest) => request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'identity_assertion';
const isClaimComplete = (request: ProxiedRequest) => request.method === 'POST' && request.path === '/agent/identity/claim/complete';
const isClaimPoll = (request: ProxiedRequest) => request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.claim;

/** Reuse of a spent refresh token: the service burns the whole family. */
const familiesBurned = (demo: ProxiedDemo) => demo.logger.audit('token.revoked').filter((event) => event.reason === 'refresh_token_reused');

/** A client claimed by read-back (so it holds a refresh token) whose next call must refresh. */
async function claimedClientDueForRefresh(demo: ProxiedDemo, options: { email?: string } = {}) {
  const store = new MemoryCredentialStore();
  const prompt = recordingPrompt();
  const client = new AgentClient({ store, prompt, ...options });
  const claim = await claimByReadBack(client, demo, 'ada@example.com');
  const spent = (await store.get(demo.url))!.identity!.refresh_token!.value;
  await expireStoredAssertion(store, demo.url);
  return { client, store, prompt, claim, spent };
}

describe('lost answers to requests that spend something', () => {
  it(
    'refresh: the spent refresh token is sent once, the family is not burned; the client registers anew by email and, approved, calls the API; the new family refreshes',
    async () => {
      const demo = await startProxiedDemo();
      const { client, store, prompt, claim, spent } = await claimedClientDueForRefresh(demo, { email: 'ada@example.com' });
      demo.proxy.drop({ match: isRefresh, lose: 'answer' });

      const needed = await rejectionOf(client.fetch(demo.api, notePost('after a lost refresh')));

      // The service rotated the token (the answer was lost after that), and never saw it again.
      expect(demo.logger.audit('assertion.refreshed').map((event) => event.registration_id)).toEqual([claim.registration_id]);
      expect(demo.proxy.seen.filter(isRefresh).map((request) => request.body.refresh_token)).toEqual([spent]);
      expect(familiesBurned(demo)).toEqual([]);
      expect((await store.get(demo.url))?.identity?.refresh_token, 'the spent token is not kept').toBeUndefined();

      // The next credential path: a new registration by email, which the person approves.
      expect(needed).toBeInstanceOf(AuthmdClientError);
      expect(needed.code).toBe('claim_required');
      const again = needed.details.body as ClaimRequiredResult;
      expect(again.registration_id).not.toBe(claim.registration_id);
      expect(prompt.shown.at(-1)).toEqual(again.handoff);
      const ready = await client.completeClaim(demo.url, await person(demo.url, 'ada@example.com').readBack(again.verification_uri));
      expect(ready).toMatchObject({ status: 'ready', registration_id: again.registration_id, claimed: true });
      expect(await statusOf(await client.fetch(demo.api, notePost('after a lost refresh')))).toBe(201);

      // The new family works: the next refresh goes through.
      const fresh = (await store.get(demo.url))!.identity!.refresh_token!.value;
      await expireStoredAssertion(store, demo.url);
      expect(await client.authenticate({ url: demo.url })).toMatchObject({ status: 'ready', registration_id: again.registration_id });
      expect(demo.proxy.seen.filter(isRefresh).map((request) => request.body.refresh_token)).toEqual([spent, fresh]);
      expect(familiesBurned(demo)).toEqual([]);
    },
    E2E_TIMEOUT,
  );

  it(
    'refresh, with no email and no ID-JAG source: reauthentication_required saying the answer was lost and what to do; a later call does not send the spent token either',
    async () => {
      const demo = await startProxiedDemo();
      const { client, spent } = await claimedClientDueForRefresh(demo);
      demo.proxy.drop({ match: isRefresh, lose: 'answer' });

      const lost = await rejectionOf(client.authenticate({ url: demo.url }));
      expect(lost).toBeInstanceOf(AuthmdClientError);
      expect(lost.code).toBe('reauthentication_required');
      expect(lost.message).toMatch(/answer to the refresh .* was lost/);
      expect(lost.message).toMatch(/not sent again/);
      expect(lost.message).toMatch(/email or an ID-JAG/);

      const later = await rejectionOf(client.authenticate({ url: demo.url }));
      expect(later.code).toBe('reauthentication_required');
      expect(demo.proxy.seen.filter(isRefresh).map((request) => request.body.refresh_token)).toEqual([spent]);
      expect(familiesBurned(demo)).toEqual([]);
    },
    E2E_TIMEOUT,
  );

  it(
    'ID-JAG registration: the used ID-JAG is not sent again; a fresh one from the source gets the same registration, and the API call succeeds',
    async () => {
      const demo = await startProxiedDemo();
      const session = await providerSession(demo.providerUrl, 'grace@example.com');
      await grantConsent(demo.providerUrl, session, demo.url);
      const client = new AgentClient({ idJag: sampleProviderSource({ providerUrl: demo.providerUrl, sessionToken: session }) });
      demo.proxy.drop({ match: isIdJagRegistration, lose: 'answer' });

      const ready = await client.authenticate({ url: demo.url });

      expect(ready).toMatchObject({ status: 'ready', registration_type: 'identity_assertion', claimed: true });
      if (ready.status !== 'ready') throw new Error('unreachable');
      const sent = demo.proxy.seen.filter(isIdJagRegistration).map((request) => request.body.assertion as string);
      expect(sent).toHaveLength(2);
      expect(sent[1], 'a fresh ID-JAG, not the used one').not.toBe(sent[0]);
      expect(demo.proxy.dropped.filter(isIdJagRegistration)).toHaveLength(1);
      expect(demo.logger.audit('registration.created').map((event) => event.registration_id)).toEqual([ready.registration_id]);
      expect(await statusOf(await client.fetch(demo.api, notePost('after a lost registration answer')))).toBe(201);
    },
    E2E_TIMEOUT,
  );

  it(
    'claim completion processed, answer lost: the code is not sent again; the client learns the claim was completed and says to log in again (claim_answer_lost); logging in again works',
    async () => {
      const demo = await startProxiedDemo();
      const prompt = recordingPrompt();
      const client = new AgentClient({ prompt });
      const ada = person(demo.url, 'ada@example.com');
      const claim = (await client.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      const code = await ada.readBack(claim.verification_uri);
      demo.proxy.drop({ match: isClaimComplete, lose: 'answer' });

      const lost = await rejectionOf(client.completeClaim(demo.url, code));

      expect(lost).toBeInstanceOf(AuthmdClientError);
      expect(lost.code).toBe('claim_answer_lost');
      expect(lost.message).toMatch(/completed the claim, but its answer was lost/);
      expect(lost.message).toMatch(/Authenticate again/);
      expect(demo.proxy.seen.filter(isClaimComplete), 'the code was sent once').toHaveLength(1);
      expect(demo.logger.audit('claim.confirmed').map((event) => event.registration_id)).toEqual([claim.registration_id]);

      // Following the message: a new registration, approved once more, and the API call goes through.
      const again = (await client.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      expect(again.status).toBe('claim_required');
      expect(again.registration_id).not.toBe(claim.registration_id);
      const ready = await client.completeClaim(demo.url, await ada.readBack(again.verification_uri));
      expect(ready).toMatchObject({ status: 'ready', registration_id: again.registration_id, claimed: true });
      expect(await statusOf(await client.fetch(demo.api, notePost('after a lost claim answer')))).toBe(201);
    },
    E2E_TIMEOUT,
  );

  it(
    'claim completion that never reached the service: the client learns the claim is still open (claim_not_completed, nothing resent), and the code given again completes it',
    async () => {
      const demo = await startProxiedDemo();
      const client = new AgentClient();
      const claim = (await client.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      const code = await person(demo.url, 'ada@example.com').readBack(claim.verification_uri);
      demo.proxy.drop({ match: isClaimComplete, lose: 'request' });

      const open = await rejectionOf(client.completeClaim(demo.url, code));

      expect(open).toBeInstanceOf(AuthmdClientError);
      expect(open.code).toBe('claim_not_completed');
      expect(open.message).toMatch(/give the code again/);
      expect(demo.proxy.seen.filter(isClaimComplete)).toHaveLength(1);
      expect(demo.proxy.forwarded.filter(isClaimComplete)).toHaveLength(0);
      expect(demo.logger.audit('claim.confirmed')).toEqual([]);

      const ready = await client.completeClaim(demo.url, code);
      expect(ready).toMatchObject({ status: 'ready', registration_id: claim.registration_id, claimed: true });
      expect(demo.proxy.forwarded.filter(isClaimComplete)).toHaveLength(1);
      expect(await statusOf(await client.fetch(demo.api, notePost('after a dropped claim request')))).toBe(201);
    },
    E2E_TIMEOUT,
  );

  it(
    'claim grant poll whose answer (the tokens) is lost: no quick resend; the next poll, one interval later, finds them handed over → claim_answer_lost',
    async () => {
      const demo = await startProxiedDemo();
      const sleeps: number[] = [];
      const client = new AgentClient({ sleep: (ms) => (sleeps.push(ms), new Promise((resolve) => setTimeout(resolve, ms))) });
      const claim = (await client.authenticate({ url: demo.url, email: 'ada@example.com' })) as ClaimRequiredResult;
      await person(demo.url, 'ada@example.com').typeIn(claim.verification_uri, claim.user_code!);
      demo.proxy.drop({ match: isClaimPoll, lose: 'answer' });

      const lost = await rejectionOf(client.waitForClaim(demo.url));

      expect(lost).toBeInstanceOf(AuthmdClientError);
      expect(lost.code).toBe('claim_answer_lost');
      expect(lost.message).toMatch(/handed the claim's tokens over in that lost answer/);
      expect(demo.proxy.seen.filter(isClaimPoll)).toHaveLength(2);
      expect(sleeps).not.toHaveLength(0);
      expect(sleeps.every((ms) => ms >= 1000), `no poll sooner than the demo's 1 s interval: ${sleeps}`).toBe(true);
      expect(demo.logger.audit('claim.confirmed').map((event) => event.registration_id)).toEqual([claim.registration_id]);
    },
    E2E_TIMEOUT,
  );
});
