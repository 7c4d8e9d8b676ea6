import { withoutTrailingSlash } from '@authmd/protocol';
import { expectEqual, expectThat, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { expectStatus } from '../flows.ts';
import { describeAnswer, type Answer, type SendOptions } from '../http.ts';
import { expectJsonError, type ErrorExpectation } from './bad-input-steps.ts';
import { otherCode, SOME_CODE } from './ceremony-steps.ts';
import { expectApiAccepts, expectError, expectNoCredentials, expectNoStore, expectSuccess } from './expect.ts';
import { expectFields, sameScopes } from './registration-steps.ts';
import { expectApiRefuses, revocationEndpoint } from './revocation.ts';
import {
  ANONYMOUS_FIELDS,
  claimedV01,
  completeV01Answer,
  emailedCode,
  readV01,
  registerV01Anonymous,
  registerVerifiedEmailAnswer,
  requireV01Anonymous,
  requireVerifiedEmail,
  sharedV01Anonymous,
  sharedV01AnonymousAnswer,
  startedV01Claim,
  startV01ClaimAnswer,
  v01Endpoints,
  VERIFIED_EMAIL_FIELDS,
  verifiedEmailCredentialType,
} from './v01-steps.ts';

/**
 * The v0.1 dialect (`/agent/auth`, protocol-reference §7), checked only when the service advertises it
 * (`agent_auth.register_uri`): registration hands out the credential itself (an API key for anonymous
 * agents), the key is a Bearer token for the protected API until RFC 7009 revokes it, and a claim is
 * proven by the code the service emails to the person, which the agent sends to `<claim_uri>/complete`.
 * The person is the suite's human driver: authmd's development mailbox, or the operator (`--human manual`).
 */

/** A v0.1 answer that must not hand out a credential (v0.1 puts it in `credential`; other dialects' names too). */
function expectNoV01Credential(answer: Answer, what: string): void {
  expectNoCredentials(answer, what);
  const credential = answer.json?.credential;
  expectThat(credential === undefined || credential === null, `${what}: expected no credential, got one (credential ${JSON.stringify(String(credential).slice(0, 12))}…): ${describeAnswer(answer)}`);
}

/** A successful `/complete` (protocol-reference §7.3): 200, the registration, status "claimed", the post-claim scopes. */
function expectClaimed(answer: Answer, registration: { id: string; postClaimScopes: string[] | undefined }, what: string): Record<string, any> {
  expectSuccess(answer, what, 200);
  const body = (answer.json ?? {}) as Record<string, any>;
  expectEqual(body.status, 'claimed', `${what}: status`);
  expectEqual(body.registration_id, registration.id, `${what}: registration_id`);
  const expected = registration.postClaimScopes;
  if (expected) {
    expectThat(
      Array.isArray(body.scopes) && sameScopes(body.scopes, expected),
      `${what}: expected scopes to be the post-claim scopes ${JSON.stringify(expected)} the registration announced, got ${JSON.stringify(body.scopes)} (${describeAnswer(answer)})`,
    );
  }
  return body;
}

/** The credential a claim answer hands out, checked against the type asked for; the API must accept it. */
async function expectHandedOut(ctx: CheckContext, body: Record<string, any>, answer: Answer, credentialType: string, what: string): Promise<void> {
  expectEqual(body.credential_type, credentialType, `${what}: credential_type (the one requested at registration)`);
  expectThat(typeof body.credential === 'string' && body.credential !== '', `${what}: expected the credential, got ${describeAnswer(answer)}`);
  if (credentialType === 'api_key') {
    expectThat(body.credential_expires === null, `${what}: an API key does not expire: expected credential_expires null, got ${JSON.stringify(body.credential_expires)}`);
  } else {
    expectFields(answer, { credential_expires: 'future-iso' }, what);
  }
  expectNoStore(answer, `${what} (it carries a credential)`);
  await expectApiAccepts(ctx, body.credential, `the credential from ${what}`);
}

const BAD: ErrorExpectation = { status: [400] };
const INVALID_REQUEST: ErrorExpectation = { status: [400], codes: ['invalid_request'] };

async function expectRefused(ctx: CheckContext, url: string, what: string, options: SendOptions, expected: ErrorExpectation): Promise<void> {
  expectJsonError(await ctx.http.send(url, { method: 'POST', ...options }), what, expected);
}

export const v01Checks: Check[] = [
  {
    id: 'registration.v01-anonymous',
    group: 'registration',
    title:
      'v0.1 anonymous registration (register_uri) answers 200 with an API key at once (credential_type "api_key", credential_expires null), its pre-claim scopes, a claim handle for claim_uri, and Cache-Control: no-store',
    ref: 'auth.md v0.1 (protocol-reference §7.2); profile §2 (responses carrying secrets)',
    async run(ctx) {
      const { service } = await requireV01Anonymous(ctx);
      const answer = await sharedV01AnonymousAnswer(ctx);
      const what = 'v0.1 anonymous registration';
      expectStatus(answer, 200, what);
      expectFields(answer, ANONYMOUS_FIELDS, what);
      const body = answer.json as Record<string, any>;
      expectEqual(body.registration_type, 'anonymous', `${what}: registration_type`);
      expectEqual(body.credential_type, 'api_key', `${what}: credential_type`);
      expectThat(body.credential_expires === null, `${what}: an API key does not expire: expected credential_expires null, got ${JSON.stringify(body.credential_expires)}`);
      const { scopes, postClaimScopes } = readV01(answer, what);
      const beyond = scopes!.filter((scope) => !postClaimScopes!.includes(scope));
      expectThat(beyond.length === 0, `${what}: the pre-claim scopes ${JSON.stringify(scopes)} must be among the post-claim scopes ${JSON.stringify(postClaimScopes)}; ${beyond.join(', ')} is not`);
      expectThat(
        withoutTrailingSlash(body.claim_url) === withoutTrailingSlash(service.agentAuth.claim_uri),
        `${what}: claim_url should be the advertised claim_uri ${service.agentAuth.claim_uri}, got ${JSON.stringify(body.claim_url)}`,
      );
      expectNoStore(answer, `${what} (it carries an API key and a claim token)`);
    },
  },
  {
    id: 'registration.v01-api-key',
    group: 'registration',
    title: 'The API key of a v0.1 anonymous registration is a Bearer credential: the protected API accepts it for a read',
    ref: 'auth.md v0.1 (protocol-reference §7.2, AUTH.md "Use the credential"); RFC 6750 §2.1',
    async run(ctx) {
      await requireV01Anonymous(ctx);
      const registration = await prerequisite('a v0.1 anonymous registration', () => sharedV01Anonymous(ctx));
      await expectApiAccepts(ctx, registration.credential!, 'the API key of a v0.1 anonymous registration (Authorization: Bearer)');
    },
  },
  {
    id: 'revocation.v01-api-key',
    group: 'revocation',
    title: 'Revoking a v0.1 API key at the revocation_endpoint answers 200, and the API then refuses the key with 401',
    ref: 'RFC 7009 §2.1, §2.2; RFC 6750 §3.1; auth.md v0.1 (protocol-reference §7.2)',
    async run(ctx) {
      await requireV01Anonymous(ctx);
      const endpoint = await revocationEndpoint(ctx);
      // A registration of the check's own: revoking must not spoil what other checks share.
      const registration = await prerequisite('a v0.1 anonymous registration whose API key the API accepts', async () => {
        const own = await registerV01Anonymous(ctx);
        await expectApiAccepts(ctx, own.credential!, 'a new API key');
        return own;
      });
      expectSuccess(await ctx.http.postForm(endpoint, { token: registration.credential! }), 'revocation of a live v0.1 API key', 200);
      await expectApiRefuses(ctx, registration.credential!, 'the revoked API key');
    },
  },
  {
    id: 'ceremony.v01-email-claim',
    group: 'ceremony',
    title:
      'v0.1 claim of an anonymous registration: claim_uri {claim_token, email} → 200 status "initiated"; the service emails the person a code; <claim_uri>/complete with it → 200 status "claimed" with the post-claim scopes, and the API key keeps working',
    ref: 'auth.md v0.1 (protocol-reference §7.3); workos.com/auth-md/docs/apps ("user claimed")',
    async run(ctx) {
      await requireV01Anonymous(ctx);
      const claimed = await claimedV01(ctx);
      const { registration, started, completion } = claimed;
      const start = `the claim start for ${claimed.email}`;
      expectSuccess(started, start, 200);
      expectFields(started, { registration_id: 'string', claim_attempt_id: 'string', status: 'string', expires_at: 'future-iso' }, start);
      expectEqual(started.json.status, 'initiated', `${start}: status`);
      expectEqual(started.json.registration_id, registration.id, `${start}: registration_id`);
      const what = '/complete with the emailed code';
      const body = expectClaimed(completion, registration, what);
      if (typeof body.credential === 'string') {
        // A service may hand out a new credential rather than upgrade the key in place: then that one must work.
        await expectHandedOut(ctx, body, completion, 'api_key', what);
      } else {
        expectEqual(body.credential_type, 'api_key', `${what}: credential_type (the key upgraded in place)`);
        await expectApiAccepts(ctx, registration.credential!, 'the API key after the claim (upgraded in place, protocol-reference §7.3)');
      }
    },
  },
  {
    id: 'ceremony.v01-verified-email',
    group: 'ceremony',
    title:
      'v0.1 verified_email registration answers 200 with a claim handle and no credential, emails the person a code, and <claim_uri>/complete with it → 200 status "claimed" with a credential of the requested type that the API accepts',
    ref: 'auth.md v0.1 (protocol-reference §7.2 verified_email, §7.3); profile §2 (responses carrying secrets)',
    async run(ctx) {
      const { service } = await requireVerifiedEmail(ctx);
      const email = ctx.email('v01-verified');
      const credentialType = verifiedEmailCredentialType(service);
      const answer = await registerVerifiedEmailAnswer(ctx, email, credentialType);
      const what = `v0.1 verified_email registration for ${email} (requested_credential_type ${credentialType})`;
      expectStatus(answer, 200, what);
      expectFields(answer, VERIFIED_EMAIL_FIELDS, what);
      expectEqual(answer.json.registration_type, 'email-verification', `${what}: registration_type`);
      expectNoV01Credential(answer, `${what}, before the person sent the code back`);
      expectNoStore(answer, `${what} (it carries a claim token)`);
      const registration = readV01(answer, what);
      const code = await emailedCode(ctx, email);
      const completion = await completeV01Answer(ctx, registration.claimToken!, code);
      const done = '/complete of the verified_email registration with the emailed code';
      const body = expectClaimed(completion, registration, done);
      await expectHandedOut(ctx, body, completion, credentialType, done);
    },
  },
  {
    id: 'ceremony.v01-wrong-otp',
    group: 'ceremony',
    title: 'v0.1: a wrong code at <claim_uri>/complete → 401 otp_invalid without a credential; the emailed code still completes the claim afterwards',
    ref: 'auth.md v0.1 (protocol-reference §7.3, §7.5 otp_invalid); profile §3 (5 wrong codes per attempt)',
    async run(ctx) {
      await requireV01Anonymous(ctx);
      const email = ctx.email('v01-wrong');
      const { registration } = await prerequisite(`a v0.1 anonymous registration with a claim started for ${email}`, () => startedV01Claim(ctx, email));
      const code = await prerequisite(`the person to read the code emailed to ${email}`, () => emailedCode(ctx, email));
      const wrong = await completeV01Answer(ctx, registration.claimToken!, otherCode(code));
      const what = `/complete with a wrong code (${otherCode(code)}; the email said ${code})`;
      expectNoV01Credential(wrong, what);
      expectError(wrong, what, '401 otp_invalid');
      expectClaimed(await completeV01Answer(ctx, registration.claimToken!, code), registration, 'after one wrong code, /complete with the emailed code');
    },
  },
  {
    id: 'ceremony.v01-complete-once',
    group: 'ceremony',
    title: 'v0.1: a second <claim_uri>/complete after the claim succeeded → 409 previously_claimed, never a second credential',
    ref: 'auth.md v0.1 (protocol-reference §7.3, §7.5 previously_claimed)',
    async run(ctx) {
      await requireV01Anonymous(ctx);
      const claimed = await prerequisite('a v0.1 registration claimed by email', async () => {
        const done = await claimedV01(ctx);
        expectSuccess(done.completion, 'the v0.1 claim (ceremony.v01-email-claim)', 200);
        return done;
      });
      const again = await completeV01Answer(ctx, claimed.registration.claimToken!, claimed.code);
      const what = 'a second /complete with the same claim token and code';
      expectNoV01Credential(again, what);
      expectError(again, what, '409 previously_claimed');
    },
  },
  {
    id: 'ceremony.v01-invalid-claim-token',
    group: 'ceremony',
    title: 'v0.1: an unknown claim token at claim_uri and at <claim_uri>/complete → 401 invalid_claim_token, without a credential',
    ref: 'auth.md v0.1 (protocol-reference §7.3, §7.5 invalid_claim_token)',
    async run(ctx) {
      await v01Endpoints(ctx);
      const unknown = `clm_${ctx.unique('unknown').replace(/-/g, '_')}`;
      expectError(await startV01ClaimAnswer(ctx, unknown, ctx.email('v01-nobody')), 'claim start with an unknown claim token', '401 invalid_claim_token');
      const complete = await completeV01Answer(ctx, unknown, SOME_CODE);
      expectNoV01Credential(complete, '/complete with an unknown claim token');
      expectError(complete, '/complete with an unknown claim token', '401 invalid_claim_token');
    },
  },
  {
    id: 'bad-input.v01-bodies',
    group: 'bad-input',
    title:
      'The v0.1 endpoints refuse bodies that are not JSON, mistyped or of an unknown type with 400 in JSON (never HTML or a 5xx), and an unsupported requested_credential_type with 400 unsupported_credential_type',
    ref: 'auth.md v0.1 (protocol-reference §7.2, §7.3, §7.5 unsupported_credential_type); profile §3',
    async run(ctx) {
      const { service, register, claim, complete } = await v01Endpoints(ctx);
      const json = { 'content-type': 'application/json' };
      await expectRefused(ctx, register, 'POST {"type": (truncated JSON) to register_uri', { body: '{"type":', headers: json }, INVALID_REQUEST);
      await expectRefused(ctx, register, 'POST a top-level array to register_uri', { body: '[{"type":"anonymous"}]', headers: json }, INVALID_REQUEST);
      await expectRefused(ctx, register, 'POST {"type":"password"} to register_uri', { body: { type: 'password', username: 'agent', password: 'hunter2' } }, INVALID_REQUEST);
      if (Array.isArray(service.agentAuth.anonymous?.credential_types_supported)) {
        await expectRefused(ctx, register, 'POST {"type":"anonymous","requested_credential_type":7} to register_uri', { body: { type: 'anonymous', requested_credential_type: 7 } }, INVALID_REQUEST);
        await expectRefused(
          ctx,
          register,
          'POST {"type":"anonymous","requested_credential_type":"password"} to register_uri (a type anonymous.credential_types_supported does not list)',
          { body: { type: 'anonymous', requested_credential_type: 'password' } },
          { status: [400], codes: ['unsupported_credential_type'] },
        );
      }
      await expectRefused(ctx, claim, 'POST {} to claim_uri', { body: {} }, BAD);
      await expectRefused(ctx, claim, 'POST {"claim_token":5,"email":true} to claim_uri', { body: { claim_token: 5, email: true } }, BAD);
      await expectRefused(ctx, claim, 'POST claim_token=x as a form to claim_uri', { body: 'claim_token=x&email=a%40example.com', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, { status: [400, 415] });
      await expectRefused(ctx, complete, 'POST {"claim_token": (truncated JSON) to <claim_uri>/complete', { body: '{"claim_token":', headers: json }, BAD);
      await expectRefused(ctx, complete, 'POST {} to <claim_uri>/complete', { body: {} }, BAD);
      await expectRefused(ctx, complete, 'POST {"claim_token":5,"otp":123456} to <claim_uri>/complete', { body: { claim_token: 5, otp: 123456 } }, BAD);
    },
  },
];
