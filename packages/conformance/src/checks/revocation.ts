import { CheckFailed, requireThat, type Check } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { callApi, exchange, exchangeAnswer, registerAnonymous, type Registration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { expectError, expectSuccess } from './expect.ts';

/** How long a revocation may take to reach the API (replicas, caches) before the check calls it a failure. */
const PROPAGATION_MS = 2_000;
const RETRY_MS = 250;

/** The advertised revocation endpoint; skipped when there is none. */
export async function revocationEndpoint(ctx: CheckContext): Promise<string> {
  const endpoint = (await ctx.service()).endpoints.revocation;
  requireThat(endpoint, 'the service advertises no revocation_endpoint');
  return endpoint;
}

async function revoke(ctx: CheckContext, form: Record<string, string>): Promise<Answer> {
  return ctx.http.postForm(await revocationEndpoint(ctx), form);
}

/** A fresh registration of the check's own: revoking must not spoil what other checks share. */
const ownRegistration = (ctx: CheckContext): Promise<Registration> => prerequisite('an anonymous registration', () => registerAnonymous(ctx));

/** A new access token the API accepts, so that its refusal later is the revocation's doing. */
async function workingAccessToken(ctx: CheckContext, registration: Registration): Promise<string> {
  return prerequisite('an access token the API accepts', async () => {
    const { accessToken } = await exchange(ctx, registration.assertion!);
    expectSuccess(await callApi(ctx, accessToken), 'the protected API with a new access token');
    return accessToken;
  });
}

/** Fails unless the API answers 401 to the token within the propagation allowance. */
export async function expectApiRefuses(ctx: CheckContext, accessToken: string, what: string): Promise<void> {
  const deadline = Date.now() + PROPAGATION_MS;
  let answer = await callApi(ctx, accessToken);
  while (answer.status !== 401 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    answer = await callApi(ctx, accessToken);
  }
  if (answer.status !== 401) throw new CheckFailed(`the protected API with ${what}: expected 401 within ${PROPAGATION_MS / 1000} s, still got ${describeAnswer(answer)}`);
}

export const revocationChecks: Check[] = [
  {
    id: 'revocation.access-token',
    group: 'revocation',
    title: 'Revoking an access token answers 200, and the API then refuses the token with 401',
    ref: 'RFC 7009 §2.1, §2.2; RFC 6750 §3.1',
    async run(ctx) {
      await revocationEndpoint(ctx);
      const accessToken = await workingAccessToken(ctx, await ownRegistration(ctx));
      expectSuccess(await revoke(ctx, { token: accessToken, token_type_hint: 'access_token' }), 'revocation of a live access token', 200);
      await expectApiRefuses(ctx, accessToken, 'the revoked access token');
    },
  },
  {
    id: 'revocation.unknown-token',
    group: 'revocation',
    title: 'Revoking a token the service never issued answers 200',
    ref: 'RFC 7009 §2.2',
    async run(ctx) {
      expectSuccess(await revoke(ctx, { token: ctx.unique('never-issued') }), 'revocation of a token the service never issued', 200);
    },
  },
  {
    id: 'revocation.assertion',
    group: 'revocation',
    title: 'Revoking an identity assertion answers 200, and exchanging it then answers invalid_grant',
    ref: 'profile §2 (service-signed assertions); RFC 7009 §2.1; RFC 7523 §3.1',
    async run(ctx) {
      await revocationEndpoint(ctx);
      const registration = await ownRegistration(ctx);
      await prerequisite('an exchange of the identity assertion', () => exchange(ctx, registration.assertion!));
      expectSuccess(await revoke(ctx, { token: registration.assertion! }), 'revocation of an identity assertion', 200);
      expectError(await exchangeAnswer(ctx, registration.assertion!), 'exchange of the revoked identity assertion', '400 invalid_grant');
    },
  },
  {
    id: 'revocation.missing-token',
    group: 'revocation',
    title: 'A revocation request without a token answers 400 invalid_request',
    ref: 'RFC 7009 §2.1, §2.2.1; RFC 6749 §5.2',
    async run(ctx) {
      expectError(await revoke(ctx, { token_type_hint: 'access_token' }), 'revocation without a token parameter', '400 invalid_request');
    },
  },
  {
    id: 'revocation.hint-ignored',
    group: 'revocation',
    title: 'An unknown or wrong token_type_hint is ignored: 200, and the access token is revoked all the same',
    ref: 'RFC 7009 §2.1; profile §2 (RFC 7009)',
    async run(ctx) {
      await revocationEndpoint(ctx);
      const registration = await ownRegistration(ctx);
      for (const hint of ['conformance_unknown_hint', 'refresh_token']) {
        const accessToken = await workingAccessToken(ctx, registration);
        expectSuccess(await revoke(ctx, { token: accessToken, token_type_hint: hint }), `revocation of an access token with token_type_hint=${hint}`, 200);
        await expectApiRefuses(ctx, accessToken, `the access token revoked with token_type_hint=${hint}`);
      }
    },
  },
];
