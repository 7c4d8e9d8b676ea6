import { grantTypes } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';
import { AgentClient, AuthmdClientError, type ClaimRequiredResult } from '../../src/index.ts';
import { discoveryAnswer, startScriptedService, type Answer, type SeenRequest } from './scripted-service.ts';
import { E2E_TIMEOUT, recordingPrompt, rejectionOf } from './support.ts';

/**
 * Issue 5, "Done when": `slow_down` handling verified by counting the client's poll times against a
 * service that returns it. A real HTTP server (v0.7 generation: the type-in direction) answers the
 * claim-grant polls from a script and notes the time of each one; the client's `sleep` advances a
 * fake clock that both sides read, so the gaps are exact and the test takes no real time.
 */

const EMAIL = 'ada@example.com';
const oauthError = (error: string): Answer => ({ status: 400, body: { error, error_description: `scripted ${error}` } });
const tokens = (now: number): Answer => ({
  status: 200,
  body: {
    access_token: 'at_scripted',
    token_type: 'Bearer',
    expires_in: 3600,
    scope: 'notes.read notes.write',
    identity_assertion: 'eyJ.scripted.assertion',
    assertion_expires: new Date(now + 3_600_000).toISOString(),
  },
});

/** A v0.7 service whose claim-grant polls get `script` in order (then `authorization_pending`). */
async function scriptedService(script: ((now: number) => Answer)[], clock: () => number) {
  const polls: { at: number; body: SeenRequest['body'] }[] = [];
  const claimStarts: SeenRequest['body'][] = [];
  let attempt = 1;
  const server = await startScriptedService((request, base) => {
    const discovered = discoveryAnswer(request, base);
    if (discovered) return discovered;
    if (request.method === 'POST' && request.path === '/agent/identity' && request.body.type === 'service_auth') {
      return {
        status: 200,
        body: {
          registration_id: 'reg_scripted',
          registration_type: 'service_auth',
          claim_url: `${base}/agent/identity/claim`,
          claim_token: 'clm_scripted',
          claim_token_expires: new Date(clock() + 86_400_000).toISOString(),
          post_claim_scopes: ['notes.read', 'notes.write'],
          claim: { user_code: '111111', expires_in: 600, verification_uri: `${base}/claim?claim_attempt_token=cvt_1`, interval: 1 },
        },
      };
    }
    if (request.method === 'POST' && request.path === '/agent/identity/claim') {
      claimStarts.push(request.body);
      attempt += 1;
      return {
        status: 200,
        body: {
          registration_id: 'reg_scripted',
          claim_attempt_id: `cla_${attempt}`,
          status: 'initiated',
          expires_at: new Date(clock() + 600_000).toISOString(),
          claim_attempt: { user_code: `${attempt}`.repeat(6), expires_in: 600, verification_uri: `${base}/claim?claim_attempt_token=cvt_${attempt}`, interval: 1 },
        },
      };
    }
    if (request.method === 'POST' && request.path === '/oauth2/token' && request.body.grant_type === grantTypes.claim) {
      polls.push({ at: clock(), body: request.body });
      const next = script[polls.length - 1];
      return next ? next(clock()) : oauthError('authorization_pending');
    }
    return undefined;
  });
  return { ...server, polls, claimStarts };
}

/** A clock that only moves when the client sleeps. */
function fakeTime() {
  let now = Date.now();
  const sleeps: number[] = [];
  return {
    clock: () => now,
    sleeps,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
  };
}

async function registered(service: { base: string }, time: ReturnType<typeof fakeTime>) {
  const prompt = recordingPrompt();
  const client = new AgentClient({ clock: time.clock, sleep: time.sleep, prompt });
  const claim = (await client.authenticate({ url: service.base, email: EMAIL })) as ClaimRequiredResult;
  expect(claim.status).toBe('claim_required');
  expect(claim.handoff).toMatchObject({ userCode: '111111', interval: 1, readBack: false });
  return { client, prompt, claim };
}

const gaps = (start: number, polls: { at: number }[]): number[] => polls.map((poll, i) => (poll.at - (i === 0 ? start : polls[i - 1]!.at)) / 1000);

describe('type-in polling: interval, slow_down, expired_token, access_denied', () => {
  it(
    'keeps the interval and adds 5 s for every slow_down, cumulatively: gaps 1, 1, 6, 11, 11 s',
    async () => {
      const time = fakeTime();
      const service = await scriptedService(
        [() => oauthError('authorization_pending'), () => oauthError('slow_down'), () => oauthError('slow_down'), () => oauthError('authorization_pending'), tokens],
        time.clock,
      );
      const { client } = await registered(service, time);
      const start = time.clock();
      const outcomes: string[] = [];
      const ready = await client.waitForClaim(service.base, { onPoll: (outcome) => outcomes.push(outcome) });

      expect(service.polls).toHaveLength(5);
      expect(gaps(start, service.polls)).toEqual([1, 1, 6, 11, 11]);
      expect(outcomes).toEqual(['authorization_pending', 'slow_down', 'slow_down', 'authorization_pending']);
      for (const poll of service.polls) expect(poll.body).toMatchObject({ grant_type: grantTypes.claim, claim_token: 'clm_scripted' });
      expect(ready).toMatchObject({ status: 'ready', access_token: 'at_scripted', registration_id: 'reg_scripted', registration_type: 'service_auth', claimed: true });
      expect((await client.status())[service.base]).toMatchObject({
        registration_id: 'reg_scripted',
        claimed: true,
        identity: { assertion: 'eyJ.scripted.assertion' },
        access_token: { value: 'at_scripted' },
      });
    },
    E2E_TIMEOUT,
  );

  it(
    "real time, the client's own sleep: interval 1 s, then +5 s after a slow_down (gaps ≈ 1, 6 s)",
    async () => {
      const service = await scriptedService([() => oauthError('slow_down'), tokens], Date.now);
      const client = new AgentClient();
      const claim = (await client.authenticate({ url: service.base, email: EMAIL })) as ClaimRequiredResult;
      expect(claim.handoff.interval).toBe(1);
      const start = Date.now();
      await client.waitForClaim(service.base);
      const measured = gaps(start, service.polls);
      expect(measured).toHaveLength(2);
      expect(measured[0]).toBeGreaterThanOrEqual(0.99);
      expect(measured[0]).toBeLessThan(2);
      expect(measured[1]).toBeGreaterThanOrEqual(5.99);
      expect(measured[1]).toBeLessThan(7);
    },
    E2E_TIMEOUT,
  );

  it(
    'expired_token: a new attempt is started (a claim start request, the prompt told of the new link and code) and polling goes on',
    async () => {
      const time = fakeTime();
      const service = await scriptedService(
        [() => oauthError('authorization_pending'), () => oauthError('expired_token'), () => oauthError('authorization_pending'), tokens],
        time.clock,
      );
      const { client, prompt, claim } = await registered(service, time);
      const ready = await client.waitForClaim(service.base);

      expect(service.claimStarts).toHaveLength(1);
      expect(service.claimStarts[0]).toMatchObject({ claim_token: 'clm_scripted', login_hint: EMAIL });
      const polls = service.polls.map((p) => p.at);
      expect(polls).toHaveLength(4);
      expect(prompt.shown).toHaveLength(2);
      expect(prompt.shown[1]).toMatchObject({ userCode: '222222', verificationUri: `${service.base}/claim?claim_attempt_token=cvt_2` });
      expect(prompt.shown[1]!.verificationUri).not.toBe(claim.verification_uri);
      // The claim start came between the second and the third poll.
      const startIndex = service.seen.findIndex((r) => r.path === '/agent/identity/claim');
      const pollIndexes = service.seen.flatMap((r, i) => (r.path === '/oauth2/token' ? [i] : []));
      expect(pollIndexes[1]).toBeLessThan(startIndex);
      expect(pollIndexes[2]).toBeGreaterThan(startIndex);
      expect(ready).toMatchObject({ status: 'ready', registration_id: 'reg_scripted', claimed: true });
    },
    E2E_TIMEOUT,
  );

  it(
    'access_denied: the client stops polling with the error access_denied',
    async () => {
      const time = fakeTime();
      const service = await scriptedService([() => oauthError('authorization_pending'), () => oauthError('access_denied'), tokens], time.clock);
      const { client } = await registered(service, time);
      const denied = await rejectionOf(client.waitForClaim(service.base));
      expect(denied).toBeInstanceOf(AuthmdClientError);
      expect(denied.code).toBe('access_denied');
      expect(service.polls, 'no poll after the denial').toHaveLength(2);
      expect(service.claimStarts).toEqual([]);
      expect((await client.status())[service.base]).toMatchObject({ registration_id: 'reg_scripted', claimed: false });
    },
    E2E_TIMEOUT,
  );
});
