/**
 * The protocol steps checks build on: register, exchange, start and finish a claim, poll, refresh.
 * Each sends one request the way a conforming agent would and returns the answer with the fields a
 * later step needs, read from either envelope (the nested `current` one or the flat v0.7 one). A step
 * that does not succeed throws `CheckFailed` quoting the answer; a check that only needs the step as a
 * prerequisite wraps it in `prerequisite()`, so that it is skipped rather than failed twice.
 */
import { grantTypes } from '@authmd/protocol';
import { CheckFailed, requireThat } from './check.ts';
import type { CheckContext } from './context.ts';
import type { Discovered } from './discovery.ts';

import { describeAnswer, type Answer } from './http.ts';

export interface Registration {
  answer: Answer;
  id: string;
  /** The service-signed identity assertion (not for an unclaimed service_auth registration). */
  assertion: string | undefined;
  claimToken: string | undefined;
  /** The claim link of the attempt the response started (service_auth, step-up). */
  verificationUri: string | undefined;
  /** The agent's code of that attempt (type-in, v0.7). */
  userCode: string | undefined;
  interval: number | undefined;
}

export interface Tokens {
  answer: Answer;
  accessToken: string;
  scope: string | undefined;
}

/** Fields of a registration or claim response, from either envelope. */
export function readRegistration(answer: Answer): Registration {
  const body = (answer.json ?? {}) as Record<string, any>;
  const claim = typeof body.claim === 'object' && body.claim !== null ? body.claim : {};
  const ceremony = body.claim_attempt ?? (typeof claim.user_code === 'string' ? claim : undefined);
  return {
    answer,
    id: body.id ?? body.registration_id,
    assertion: body.identity?.assertion ?? body.identity_assertion,
    claimToken: claim.token ?? body.claim_token,
    verificationUri: claim.attempt?.verification_uri ?? body.attempt?.verification_uri ?? ceremony?.verification_uri,
    userCode: ceremony?.user_code,
    interval: ceremony?.interval,
  };
}

/** Why a check that needs the identity endpoint is skipped on a service that speaks only v0.1. */
export const NO_IDENTITY_ENDPOINT = 'the service advertises no agent_auth.identity_endpoint (only v0.1 register_uri)';

/** The identity endpoint (`current` and `v0.7`); skipped when the service speaks only v0.1. */
export function identityUrl(service: Discovered): string {
  requireThat(service.endpoints.identity, NO_IDENTITY_ENDPOINT);
  return service.endpoints.identity;
}

/** Fails (CheckFailed) unless the answer has `status`, naming a rate limit when that is why. */
export function expectStatus(answer: Answer, status: number, what: string): void {
  if (answer.status === status) return;
  const limited = answer.status === 429 ? ` (rate limited: retry after ${answer.headers.get('retry-after') ?? '?'} s, or raise the service's limits for this address)` : '';
  throw new CheckFailed(`${what}: expected ${status}, got ${describeAnswer(answer)}${limited}`);
}

export async function registerAnonymous(ctx: CheckContext): Promise<Registration> {
  const service = await ctx.service();
  requireThat(service.identityTypes.includes('anonymous'), 'the service does not advertise anonymous registration');
  const answer = await ctx.http.postJson(identityUrl(service), { type: 'anonymous' });
  expectStatus(answer, 200, 'anonymous registration');
  const registration = readRegistration(answer);
  if (!registration.assertion || !registration.claimToken) throw new CheckFailed(`anonymous registration: no identity assertion or claim token in ${answer.text}`);
  return registration;
}

export async function registerServiceAuth(ctx: CheckContext, email = ctx.email()): Promise<Registration> {
  const service = await ctx.service();
  requireThat(service.identityTypes.includes('service_auth'), 'the service does not advertise service_auth registration');
  const answer = await ctx.http.postJson(identityUrl(service), { type: 'service_auth', login_hint: email });
  expectStatus(answer, 200, 'service_auth registration');
  const registration = readRegistration(answer);
  if (!registration.claimToken || !registration.verificationUri) throw new CheckFailed(`service_auth registration: no claim token or claim link in ${answer.text}`);
  return registration;
}

/** RFC 7523 jwt-bearer at the token endpoint; the raw answer. */
export async function exchangeAnswer(ctx: CheckContext, assertion: string, extra: Record<string, string> = {}): Promise<Answer> {
  const service = await ctx.service();
  return ctx.http.postForm(service.endpoints.token, { grant_type: grantTypes.jwtBearer, assertion, ...extra });
}

export async function exchange(ctx: CheckContext, assertion: string, extra: Record<string, string> = {}): Promise<Tokens> {
  const answer = await exchangeAnswer(ctx, assertion, extra);
  expectStatus(answer, 200, 'jwt-bearer exchange');
  const accessToken = answer.json?.access_token;
  if (typeof accessToken !== 'string') throw new CheckFailed(`jwt-bearer exchange: no access_token in ${answer.text}`);
  return { answer, accessToken, scope: answer.json?.scope };
}

/** Starts (or re-mints) a claim attempt in the current dialect's body form. */
export async function startClaim(ctx: CheckContext, claimToken: string, email = ctx.email()): Promise<Registration> {
  const service = await ctx.service();
  requireThat(service.endpoints.claim, 'the service advertises no claim_endpoint');
  const answer = await ctx.http.postJson(service.endpoints.claim, { type: 'service_auth', claim_token: claimToken, login_hint: email });
  expectStatus(answer, 200, 'claim start');
  const started = readRegistration(answer);
  if (!started.verificationUri) throw new CheckFailed(`claim start: no verification_uri in ${answer.text}`);
  return started;
}

/** Read-back completion: the code the page showed, at `<claim_endpoint>/complete`; the raw answer. */
export async function completeAnswer(ctx: CheckContext, claimToken: string, userCode: string): Promise<Answer> {
  const service = await ctx.service();
  requireThat(service.endpoints.claimComplete, 'the service advertises no claim_endpoint');
  return ctx.http.postJson(service.endpoints.claimComplete, { claim_token: claimToken, user_code: userCode });
}

/** One poll of the v0.7 claim grant; the raw answer. */
export async function pollAnswer(ctx: CheckContext, claimToken: string): Promise<Answer> {
  const service = await ctx.service();
  return ctx.http.postForm(service.endpoints.token, { grant_type: grantTypes.claim, claim_token: claimToken });
}

/** `{type:"refresh"}` at the identity endpoint; the raw answer. */
export async function refreshAnswer(ctx: CheckContext, refreshToken: string): Promise<Answer> {
  const service = await ctx.service();
  return ctx.http.postJson(identityUrl(service), { type: 'refresh', refresh_token: refreshToken });
}

/** The protected API with a bearer token (or none). */
export async function callApi(ctx: CheckContext, accessToken?: string): Promise<Answer> {
  return ctx.http.get(await ctx.api(), accessToken ? { authorization: `Bearer ${accessToken}` } : {});
}

export interface Claimed {
  registration: Registration;
  assertion: string;
  refreshToken: string | undefined;
  /** The page code the person read back, spent by the completion. */
  code: string;
  /** The `/complete` answer that claimed the registration. */
  completion: Answer;
}

/**
 * A service_auth registration claimed by the person in the read-back direction (current dialect):
 * register, the human authorizes and reads the code back, `/complete`. One per `purpose` and run:
 * the checks that only read a claimed registration share the default one; a check that spends or
 * destroys what the claim gave (refresh tokens) asks for its own.
 */
export function claimedByReadBack(ctx: CheckContext, purpose = 'shared'): Promise<Claimed> {
  return ctx.once(`claimed-read-back:${purpose}`, async () => {
    const registration = await registerServiceAuth(ctx);
    ctx.note(`waiting for the person (${ctx.human.name}) to authorize the agent at ${registration.verificationUri}`);
    const code = await ctx.human.readBack(registration.verificationUri!, ctx.email());
    const answer = await completeAnswer(ctx, registration.claimToken!, code);
    expectStatus(answer, 200, 'read-back completion');
    const identity = answer.json?.identity ?? {};
    const assertion = identity.assertion ?? answer.json?.identity_assertion;
    if (typeof assertion !== 'string') throw new CheckFailed(`read-back completion: no identity assertion in ${answer.text}`);
    return { registration, assertion, refreshToken: identity.refresh_token?.value, code, completion: answer };
  });
}
