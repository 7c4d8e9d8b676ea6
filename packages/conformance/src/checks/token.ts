import { grantTypes, readTokenResponse } from '@authmd/protocol';
import { expectThat, requireThat, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';

import { exchangeAnswer, pollAnswer, readOrFail, registerServiceAuth, type Registration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { expectFields, preClaimScopes, sameScopes, scopeSet, sharedAnonymous } from './registration-steps.ts';
import { credentialKeys, expectApiAccepts, expectError, expectNoStore, expectPragmaNoCache, expectSuccess } from './expect.ts';
import { decodeJwt, tamperedJwt } from '../jwt.ts';

const ELSEWHERE = 'https://elsewhere.example/';

const anonymous = (ctx: CheckContext): Promise<Registration> => prerequisite('an anonymous registration', () => sharedAnonymous(ctx));

async function postToken(ctx: CheckContext, form: Record<string, string>): Promise<Answer> {
  return ctx.http.postForm((await ctx.service()).endpoints.token, form);
}

function expectJson(answer: Answer, what: string): void {
  const type = answer.headers.get('content-type') ?? '';
  expectThat(/^application\/json\b/i.test(type), `${what}: expected Content-Type: application/json, got ${type || 'no Content-Type'} (${describeAnswer(answer)})`);
}

/** The access token of a 200 answer; fails naming the answer when there is none. */
function accessTokenOf(answer: Answer, what: string): string {
  expectSuccess(answer, what, 200);
  return readOrFail(readTokenResponse(answer.json), answer, what).accessToken;
}

export const tokenChecks: Check[] = [
  {
    id: 'token.jwt-bearer',
    group: 'token',
    title: 'Exchanging an anonymous identity assertion answers 200 with a Bearer token holding the pre-claim scope, which the API accepts',
    ref: 'RFC 7523 §2.1; RFC 6749 §5.1; auth.md §2.7',
    async run(ctx) {
      const registration = await anonymous(ctx);
      const answer = await exchangeAnswer(ctx, registration.assertion!);
      const what = 'jwt-bearer exchange of an anonymous identity assertion';
      expectSuccess(answer, what, 200);
      expectJson(answer, what);
      expectFields(answer, { access_token: 'string', token_type: 'string', expires_in: 'positive-number', scope: 'string' }, what);
      const { token_type: tokenType, scope, access_token: accessToken } = answer.json;
      expectThat(String(tokenType).toLowerCase() === 'bearer', `${what}: token_type: expected Bearer, got ${JSON.stringify(tokenType)}`);
      const preClaim = preClaimScopes(registration);
      if (preClaim) {
        expectThat(sameScopes(scopeSet(scope)!, preClaim), `${what}: expected the pre-claim scope "${preClaim.join(' ')}", got ${JSON.stringify(scope)}`);
      }
      await expectApiAccepts(ctx, accessToken, 'the new access token');
    },
  },
  {
    id: 'token.no-store',
    group: 'token',
    title: 'Token endpoint answers, errors included, carry Cache-Control: no-store and Pragma: no-cache',
    ref: 'RFC 6749 §5.1, §5.2; profile §2 (responses carrying secrets)',
    async run(ctx) {
      const registration = await anonymous(ctx);
      const answers: [string, Answer][] = [
        ['a successful exchange', await exchangeAnswer(ctx, registration.assertion!)],
        ['an exchange of a malformed assertion', await exchangeAnswer(ctx, 'not-a-jwt')],
        ['an unsupported grant_type', await postToken(ctx, { grant_type: 'password', username: 'conformance', password: 'conformance' })],
      ];
      expectSuccess(answers[0]![1], 'jwt-bearer exchange of an anonymous identity assertion', 200);
      for (const [what, answer] of answers) {
        expectNoStore(answer, `token endpoint, ${what}`);
        expectPragmaNoCache(answer, `token endpoint, ${what}`);
      }
    },
  },
  {
    id: 'token.unsupported-grant',
    group: 'token',
    title: 'An unsupported grant_type (password) answers 400 unsupported_grant_type in JSON',
    ref: 'RFC 6749 §5.2',
    async run(ctx) {
      const answer = await postToken(ctx, { grant_type: 'password', username: 'conformance', password: 'conformance' });
      const what = 'grant_type=password';
      expectError(answer, what, '400 unsupported_grant_type');
      expectJson(answer, what);
      const description = answer.json.error_description;
      expectThat(description === undefined || typeof description === 'string', `${what}: error_description must be a string when present, got ${JSON.stringify(description)}`);
    },
  },
  {
    id: 'token.invalid-grant',
    group: 'token',
    title: 'A malformed assertion, and a genuine one whose payload was altered, answer 400 invalid_grant',
    ref: 'RFC 7523 §3, §3.1; RFC 6749 §5.2',
    async run(ctx) {
      expectError(await exchangeAnswer(ctx, 'not-a-jwt'), 'jwt-bearer with assertion "not-a-jwt"', '400 invalid_grant');
      const registration = await anonymous(ctx);
      const exp = decodeJwt(registration.assertion!)?.payload.exp;
      // The forger's edit: a longer life, the service's own signature kept.
      const tampered = tamperedJwt(registration.assertion!, 'exp', typeof exp === 'number' ? exp + 86_400 : Math.floor(Date.now() / 1000) + 86_400);
      expectError(await exchangeAnswer(ctx, tampered), 'jwt-bearer with a genuine assertion whose payload was tampered with (exp changed, signature kept)', '400 invalid_grant');
    },
  },
  {
    id: 'token.missing-assertion',
    group: 'token',
    title: 'The jwt-bearer grant without an assertion answers 400 invalid_request',
    ref: 'RFC 7523 §2.1; RFC 6749 §5.2',
    async run(ctx) {
      expectError(await postToken(ctx, { grant_type: grantTypes.jwtBearer }), 'jwt-bearer without an assertion parameter', '400 invalid_request');
    },
  },
  {
    id: 'token.resource-binding',
    group: 'token',
    title: 'resource= the metadata\'s resource gives a token the API accepts; a resource that is not the service\'s answers 400 invalid_target',
    ref: 'RFC 8707 §2, §2.2; profile §2 (resource on the token endpoint)',
    async run(ctx) {
      const service = await ctx.service();
      const registration = await anonymous(ctx);
      const what = `jwt-bearer with resource=${service.resource} (the metadata's resource)`;
      const bound = accessTokenOf(await exchangeAnswer(ctx, registration.assertion!, { resource: service.resource }), what);
      await expectApiAccepts(ctx, bound, `a token bound to ${service.resource}`);
      expectError(await exchangeAnswer(ctx, registration.assertion!, { resource: ELSEWHERE }), `jwt-bearer with resource=${ELSEWHERE}, which is not the service's`, '400 invalid_target');
    },
  },
  {
    id: 'token.unclaimed-refused',
    group: 'token',
    title: 'The token endpoint hands no token for a service_auth registration nobody has claimed: the claim grant answers authorization_pending',
    ref: 'profile §2 (unclaimed non-anonymous registrations); auth.md §3 (claim grant); RFC 8628 §3.5',
    async run(ctx) {
      const service = await ctx.service();
      // In the current dialect an unclaimed service_auth registration holds no assertion to exchange
      // (registration.service-auth checks that); only the v0.7 claim grant can ask for its tokens.
      requireThat(service.dialects.v07, 'the service does not advertise the v0.7 claim grant, the only way to ask the token endpoint for an unclaimed service_auth registration\'s tokens (registration.service-auth checks that it gets no assertion)');
      const registration = await prerequisite('a service_auth registration', () => registerServiceAuth(ctx, ctx.email('nobody')));
      const answer = await pollAnswer(ctx, registration.claimToken!);
      const what = 'the claim grant for a service_auth registration nobody has claimed';
      expectError(answer, what, '400 authorization_pending');
      const credentials = credentialKeys(answer.json);
      expectThat(credentials.length === 0, `${what}: expected no credential, got ${credentials.join(', ')}`);
    },
  },
];
