import { CheckFailed, expectThat, requireThat, Skipped, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import {
  callApi,
  claimedByReadBack,
  completeAnswer,
  exchange,
  exchangeAnswer,
  pollAnswer,
  registerAnonymous,
  registerServiceAuth,
  startClaim,
  type ClaimAttempt,
} from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { expectEmailOf, expectPostClaimExchange, expectScopes, intervalOf, otherCode, pendingRegistration, pollUntilSettled, SOME_CODE } from './ceremony-steps.ts';
import { expectError, expectNoCredentials } from './expect.ts';
import { postClaimScopes } from './registration-steps.ts';

/**
 * Both directions of the claim ceremony. Read-back (`current`): the person presses Authorize, the page
 * shows a code, the agent sends it to `<claim_endpoint>/complete`. Type-in (`v0.7`): the agent shows its
 * `user_code`, the person types it on the page, the agent polls the claim grant. Each direction is
 * checked only when the service advertises it; every ceremony costs the person a visit, so each check
 * asks for as few as its rule needs.
 */

const NO_READ_BACK = 'the service does not advertise the read-back ceremony (the current dialect: identity_endpoint with refresh, or no claim grant)';
const NO_TYPE_IN = 'the service does not advertise the v0.7 claim grant (type-in ceremony)';

async function readBackService(ctx: CheckContext): Promise<Discovered> {
  const service = await ctx.service();
  requireThat(service.dialects.current, NO_READ_BACK);
  return service;
}

async function typeInService(ctx: CheckContext): Promise<Discovered> {
  const service = await ctx.service();
  requireThat(service.dialects.v07, NO_TYPE_IN);
  return service;
}

/** The assertion a successful `/complete` carries, after checking the answer's shape (protocol-reference §2.5). */
function claimedAssertion(answer: Answer, what: string): string {
  expectThat(answer.status === 200, `${what}: expected 200 status "claimed", got ${describeAnswer(answer)}`);
  const body = (answer.json ?? {}) as Record<string, any>;
  expectThat(body.status === 'claimed', `${what}: expected status "claimed", got ${JSON.stringify(body.status)} in ${describeAnswer(answer)}`);
  const identity = body.identity ?? {};
  expectThat(typeof identity.assertion === 'string', `${what}: no identity.assertion in ${describeAnswer(answer)}`);
  expectThat(isTime(identity.expires_at), `${what}: identity.expires_at should be an ISO-8601 time, got ${JSON.stringify(identity.expires_at)}`);
  const refresh = identity.refresh_token ?? {};
  expectThat(typeof refresh.value === 'string' && refresh.value.length > 0, `${what}: no identity.refresh_token.value in ${describeAnswer(answer)}`);
  expectThat(isTime(refresh.expires_at), `${what}: identity.refresh_token.expires_at should be an ISO-8601 time, got ${JSON.stringify(refresh.expires_at)}`);
  return identity.assertion;
}

/** The assertion a successful claim-grant poll carries, after checking the token response (protocol-reference §3). */
function claimGrantAssertion(answer: Answer, what: string): string {
  expectThat(answer.status === 200, `${what}: expected 200, got ${describeAnswer(answer)}`);
  const body = answer.json as Record<string, any>;
  expectThat(typeof body.access_token === 'string', `${what}: the 200 has no access_token: ${describeAnswer(answer)}`);
  expectThat(String(body.token_type).toLowerCase() === 'bearer', `${what}: token_type should be Bearer, got ${JSON.stringify(body.token_type)}`);
  expectThat(typeof body.expires_in === 'number' && body.expires_in > 0, `${what}: expires_in should be a positive number, got ${JSON.stringify(body.expires_in)}`);
  expectThat(typeof body.identity_assertion === 'string', `${what}: the 200 has no identity_assertion: ${describeAnswer(answer)}`);
  expectThat(isTime(body.assertion_expires), `${what}: assertion_expires should be an ISO-8601 time, got ${JSON.stringify(body.assertion_expires)}`);
  return body.identity_assertion;
}

function isTime(value: unknown): boolean {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

/**
 * The person's part and the agent's for the attempt `started` (a claim start's answer, which carries no
 * claim token), in whichever direction the service speaks (read-back first); the agent's last answer.
 */
async function completeClaim(ctx: CheckContext, claimToken: string, started: ClaimAttempt): Promise<{ answer: Answer; assertion: unknown }> {
  const service = await ctx.service();
  if (service.dialects.current) {
    const code = await prerequisite('the person to authorize on the claim page', () => ctx.human.readBack(started.verificationUri!, ctx.email()));
    const answer = await completeAnswer(ctx, claimToken, code);
    return { answer, assertion: answer.status === 200 ? claimedAssertion(answer, 'read-back completion') : undefined };
  }
  requireThat(started.userCode, 'the service speaks only the type-in direction, and the claim attempt carries no user_code');
  const lastPoll = Date.now();
  const pending = await pollAnswer(ctx, claimToken);
  await prerequisite('the person to type the agent\'s code on the claim page', () => ctx.human.typeIn(started.verificationUri!, ctx.email(), started.userCode!));
  const answer = pending.status === 200 ? pending : await pollUntilSettled(ctx, claimToken, intervalOf(started), lastPoll);
  return { answer, assertion: answer.status === 200 ? claimGrantAssertion(answer, 'the claim grant after the person typed the code') : undefined };
}

export const ceremonyChecks: Check[] = [
  {
    id: 'ceremony.read-back',
    group: 'ceremony',
    title: 'Read-back: after the person authorizes, /complete with the page code claims the registration: status "claimed", an assertion with their email, a refresh token; the assertion exchanges for the post-claim scopes',
    ref: 'auth.md §2.5 (protocol-reference §2.5, §2.10); profile §1',
    async run(ctx) {
      await readBackService(ctx);
      // This check's subject is the shared claim itself: its failure is this check's failure.
      const claimed = await claimedByReadBack(ctx);
      const assertion = claimedAssertion(claimed.completion, 'read-back completion');
      expectEmailOf(assertion, ctx.email(), 'the identity assertion from /complete');
      await expectPostClaimExchange(ctx, assertion, claimed.registration, 'exchanging the claimed assertion');
    },
  },
  {
    id: 'ceremony.not-confirmed',
    group: 'ceremony',
    title: '/complete before the person has authorized → 409 claim_not_confirmed, and no credentials',
    ref: 'auth.md §2.5 (protocol-reference §2.5)',
    async run(ctx) {
      await readBackService(ctx);
      const pending = await prerequisite('a service_auth registration', () => pendingRegistration(ctx));
      const answer = await completeAnswer(ctx, pending.claimToken!, SOME_CODE);
      expectError(answer, '/complete before the person acted', '409 claim_not_confirmed');
      expectNoCredentials(answer, '/complete before the person acted');
    },
  },
  {
    id: 'ceremony.wrong-code',
    group: 'ceremony',
    title: 'A wrong code at /complete → 401 invalid_user_code without credentials; the right code still completes the claim afterwards',
    ref: 'auth.md §2.5 (protocol-reference §2.5); profile §3 (5 wrong codes per attempt)',
    async run(ctx) {
      await readBackService(ctx);
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx));
      const code = await prerequisite('the person to authorize on the claim page', () => ctx.human.readBack(registration.verificationUri!, ctx.email()));
      const wrong = await completeAnswer(ctx, registration.claimToken!, otherCode(code));
      expectError(wrong, `/complete with a wrong code (${otherCode(code)}, the page showed ${code})`, '401 invalid_user_code');
      expectNoCredentials(wrong, '/complete with a wrong code');
      const right = await completeAnswer(ctx, registration.claimToken!, code);
      claimedAssertion(right, 'after one wrong code, /complete with the code the page showed');
    },
  },
  {
    id: 'ceremony.complete-once',
    group: 'ceremony',
    title: 'A second /complete after the claim succeeded → 409 already_claimed, never a second set of credentials',
    ref: 'auth.md §2.5 (protocol-reference §2.5: "returned exactly once")',
    async run(ctx) {
      await readBackService(ctx);
      const claimed = await prerequisite('a registration claimed by read-back', () => claimedByReadBack(ctx));
      const again = await completeAnswer(ctx, claimed.registration.claimToken!, claimed.code);
      expectNoCredentials(again, 'a second /complete with the same claim token and code');
      expectError(again, 'a second /complete with the same claim token and code', '409 already_claimed');
    },
  },
  {
    id: 'ceremony.type-in',
    group: 'ceremony',
    title: 'Type-in: the claim grant answers authorization_pending until the person types the user_code, then 200 with an access token (post-claim scopes) and an identity assertion with their email',
    ref: 'auth.md v0.7 (protocol-reference §3: claim grant); RFC 8628 §3.4–3.5',
    async run(ctx) {
      await typeInService(ctx);
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx));
      expectThat(
        typeof registration.userCode === 'string' && /^\d{6}$/.test(registration.userCode),
        `the v0.7 registration response should carry claim.user_code (6 digits) for the agent to show, got ${describeAnswer(registration.answer)}`,
      );
      const lastPoll = Date.now();
      const pending = await pollAnswer(ctx, registration.claimToken!);
      expectError(pending, 'the claim grant before the person acted', '400 authorization_pending');
      ctx.note(`waiting for the person (${ctx.human.name}) to type ${registration.userCode} at ${registration.verificationUri}`);
      try {
        await ctx.human.typeIn(registration.verificationUri!, ctx.email(), registration.userCode);
      } catch (error) {
        throw new CheckFailed(`the person could not type the agent's code on the claim page: ${(error as Error).message}`);
      }
      const answer = await pollUntilSettled(ctx, registration.claimToken!, intervalOf(registration), lastPoll);
      const assertion = claimGrantAssertion(answer, 'the claim grant after the person typed the code');
      expectScopes(answer, postClaimScopes(registration), 'the claim grant');
      expectEmailOf(assertion, ctx.email(), "the claim grant's identity_assertion");
    },
  },
  {
    id: 'ceremony.slow-down',
    group: 'ceremony',
    title:
      'A claim-grant poll sooner than `interval` → 400 slow_down (interval + 5 s), never an error that ends the ceremony. Skipped when the service tolerates early polls (authorization_pending): RFC 8628 lets the server choose, and the published v0.7 reference never emits slow_down',
    ref: 'RFC 8628 §3.5; auth.md v0.7 (protocol-reference §3); profile §1',
    async run(ctx) {
      await typeInService(ctx);
      const pending = await prerequisite('a service_auth registration', () => pendingRegistration(ctx));
      const interval = intervalOf(pending);
      const first = await prerequisite('a first poll answered authorization_pending', async () => {
        const answer = await pollAnswer(ctx, pending.claimToken!);
        expectError(answer, 'the first poll of a pending claim', '400 authorization_pending', '400 slow_down');
        return answer;
      });
      const early = await pollAnswer(ctx, pending.claimToken!);
      if (early.status === 400 && early.json?.error === 'authorization_pending') {
        throw new Skipped(`two polls at once were both answered authorization_pending: the service does not throttle polling (slow_down is the server's choice in RFC 8628 §3.5); first: ${describeAnswer(first)}`);
      }
      expectError(early, `a poll right after another (interval ${interval} s); an RFC 8628 client stops polling on any other error`, '400 slow_down');
      const announced = early.json?.interval;
      if (announced !== undefined) {
        expectThat(typeof announced === 'number' && announced >= interval + 5, `slow_down must add 5 s to the interval (RFC 8628 §3.5): was ${interval} s, the answer says interval ${JSON.stringify(announced)}`);
      }
    },
  },
  {
    id: 'ceremony.anonymous-claim',
    group: 'ceremony',
    title: 'An anonymous registration claimed by email (claim start with login_hint, then the ceremony) ends with an assertion for the person and the post-claim scopes; its pre-claim access token and assertion stop working',
    ref: 'auth.md §2.4–2.5 (protocol-reference §2.5 side effects); profile §2 (assertion generations)',
    async run(ctx) {
      const anonymous = await prerequisite('an anonymous registration', () => registerAnonymous(ctx));
      const before = await prerequisite('an exchange of the anonymous assertion', () => exchange(ctx, anonymous.assertion!));
      const api = await callApi(ctx, before.accessToken);
      requireThat(api.status !== 401, `the protected API refuses the pre-claim access token even before the claim, so its revocation cannot be observed: ${describeAnswer(api)}`);
      const started = await startClaim(ctx, anonymous.claimToken!);
      const { answer, assertion } = await completeClaim(ctx, anonymous.claimToken!, started);
      expectThat(answer.status === 200 && typeof assertion === 'string', `claiming the anonymous registration: expected 200 with a new identity assertion, got ${describeAnswer(answer)}`);
      expectEmailOf(assertion, ctx.email(), 'the assertion of the claimed anonymous registration');
      await expectPostClaimExchange(ctx, assertion, anonymous, 'exchanging the assertion of the claimed anonymous registration');
      const oldToken = await callApi(ctx, before.accessToken);
      expectThat(oldToken.status === 401, `the pre-claim access token should be refused once the registration is claimed (401), got ${describeAnswer(oldToken)}`);
      const oldAssertion = await exchangeAnswer(ctx, anonymous.assertion!);
      expectError(oldAssertion, 'the pre-claim assertion, exchanged after the claim (profile §2: older generations are useless)', '400 invalid_grant');
    },
  },
  {
    id: 'ceremony.deny',
    group: 'ceremony',
    title: 'When the person presses Deny: /complete → 403 claim_denied (read-back) and the claim grant → access_denied (type-in), without credentials',
    ref: 'auth.md §2.16 error table (claim_denied); RFC 8628 §3.5 (access_denied)',
    async run(ctx) {
      const service = await ctx.service();
      requireThat(service.dialects.current || service.dialects.v07, `${NO_READ_BACK}, nor the claim grant`);
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx));
      await prerequisite('the person to press Deny on the claim page', () => ctx.human.deny(registration.verificationUri!, ctx.email()));
      if (service.dialects.current) {
        const answer = await completeAnswer(ctx, registration.claimToken!, SOME_CODE);
        expectNoCredentials(answer, '/complete after the person denied');
        expectError(answer, '/complete after the person denied', '403 claim_denied');
      }
      if (service.dialects.v07) {
        const answer = await pollAnswer(ctx, registration.claimToken!);
        expectNoCredentials(answer, 'the claim grant after the person denied');
        expectError(answer, 'the claim grant after the person denied', '400 access_denied');
      }
    },
  },
  {
    id: 'ceremony.invalid-claim-token',
    group: 'ceremony',
    title:
      'An unknown claim token: claim start → 401 invalid_claim_token; /complete → 400 invalid_claim (or 401 invalid_claim_token); the claim grant → 400 expired_token (or invalid_grant), never authorization_pending',
    ref: 'auth.md §2.4, §2.5 (protocol-reference §2.4, §2.5, §3 claim grant table); RFC 8628 §3.5',
    async run(ctx) {
      const service = await ctx.service();
      requireThat(service.endpoints.claim, 'the service advertises no claim_endpoint');
      const unknown = `clm_${ctx.unique('unknown').replace(/-/g, '_')}`;
      const start = await ctx.http.postJson(service.endpoints.claim, { type: 'service_auth', claim_token: unknown, login_hint: ctx.email() });
      expectError(start, 'claim start with an unknown claim token', '401 invalid_claim_token');
      if (service.dialects.current) {
        const complete = await completeAnswer(ctx, unknown, SOME_CODE);
        expectError(complete, '/complete with an unknown claim token', '400 invalid_claim', '401 invalid_claim_token');
      }
      if (service.dialects.v07) {
        const poll = await pollAnswer(ctx, unknown);
        expectError(poll, 'the claim grant with an unknown claim token (a pending answer would keep the agent polling forever)', '400 expired_token', '400 invalid_grant');
      }
    },
  },
  {
    id: 'ceremony.remint',
    group: 'ceremony',
    title: 'A second claim start replaces the attempt: the code the person revealed on the old attempt no longer completes; the new attempt does',
    ref: 'auth.md §2.4 (protocol-reference §2.4: "replacing any previous attempt")',
    async run(ctx) {
      await readBackService(ctx);
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx));
      const oldCode = await prerequisite('the person to authorize on the claim page', () => ctx.human.readBack(registration.verificationUri!, ctx.email()));
      const reminted = await startClaim(ctx, registration.claimToken!);
      if (registration.userCode && reminted.userCode) {
        expectThat(reminted.userCode !== registration.userCode, `the new attempt should have a new user_code, got the old one (${registration.userCode}) again`);
      }
      const stale = await completeAnswer(ctx, registration.claimToken!, oldCode);
      expectNoCredentials(stale, '/complete with the code of the replaced attempt');
      expectThat(stale.status >= 400 && stale.status < 500, `the code revealed on the replaced attempt should no longer complete the claim (a 4xx), got ${describeAnswer(stale)}`);
      let newCode: string;
      try {
        newCode = await ctx.human.readBack(reminted.verificationUri!, ctx.email());
      } catch (error) {
        throw new CheckFailed(`the new attempt's link did not let the person authorize: ${(error as Error).message}`);
      }
      claimedAssertion(await completeAnswer(ctx, registration.claimToken!, newCode), "/complete with the new attempt's code");
    },
  },
];
