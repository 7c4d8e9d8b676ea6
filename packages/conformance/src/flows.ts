/**
 * The protocol steps checks build on: register, exchange, start and finish a claim, poll, refresh.
 * Each sends one request the way a conforming agent would and returns the answer with the fields a
 * later step needs, read by @authmd/protocol's readers in the dialects the service advertises (the
 * nested `current` envelope, the flat v0.7 one, or both), else in either alone. A step that does not succeed, or whose
 * answer does not read, throws `CheckFailed` quoting the answer; a check that only needs the step as a
 * prerequisite wraps it in `prerequisite()`, so that it is skipped rather than failed twice. The
 * checks that judge an answer's shape look at its raw JSON instead, before any reader.
 */
import {
  advertisedEnvelopes,
  grantTypes,
  readClaimedEnvelope,
  readClaimStartedEnvelope,
  readRegistrationEnvelope,
  readTokenResponse,
  readTolerantly,
  type EnvelopeDialect,
  type Parsed,
  type ScopesView,
} from '@authmd/protocol';
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
  /** What the registration holds now and once claimed. */
  scopes: ScopesView;
}

/** A claim attempt a claim start began (the claim token is the caller's: the answer does not repeat it). */
export interface ClaimAttempt {
  answer: Answer;
  verificationUri: string;
  /** The agent's code (type-in, v0.7). */
  userCode: string | undefined;
  interval: number | undefined;
}

export interface Tokens {
  answer: Answer;
  accessToken: string;
  scope: string | undefined;
}

/**
 * Reads an answer of the identity or claim endpoint to go on with a flow: in the advertised dialects,
 * else in either alone. Whether the service sends every advertised envelope in full is for the checks
 * that judge shapes (registration.*): a flow that needs one value must not fail another check for it.
 */
function readForFlow<T>(read: (body: unknown, dialects: readonly EnvelopeDialect[]) => Parsed<T>, answer: Answer, service: Discovered): Parsed<T> {
  return readTolerantly(read, answer.json, advertisedEnvelopes(service.dialects));
}

/** A reader's value, or CheckFailed naming what does not read and quoting the answer. */
export function readOrFail<T>(read: Parsed<T>, answer: Answer, what: string): T {
  if (read.ok) return read.value;
  throw new CheckFailed(`${what}: the answer does not read (${read.message}): ${describeAnswer(answer)}`);
}

/** A registration answer (or the registration part of a step-up 401), read in the advertised dialects. */
export function registrationOf(answer: Answer, service: Discovered): Parsed<Registration> {
  const now = Date.now();
  const read = readForFlow((body, dialects) => readRegistrationEnvelope(body, dialects, now), answer, service);
  if (!read.ok) return read;
  const { id, identity, claim, scopes } = read.value;
  const attempt = claim?.attempt;
  return {
    ok: true,
    value: { answer, id, assertion: identity?.assertion, claimToken: claim?.token, verificationUri: attempt?.verificationUri, userCode: attempt?.agentCode, interval: attempt?.interval, scopes },
  };
}

export function readRegistration(answer: Answer, service: Discovered, what: string): Registration {
  return readOrFail(registrationOf(answer, service), answer, what);
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

/** `{type:"anonymous"}` at the identity endpoint; the raw answer. */
export async function registerAnonymousAnswer(ctx: CheckContext): Promise<Answer> {
  const service = await ctx.service();
  requireThat(service.identityTypes.includes('anonymous'), 'the service does not advertise anonymous registration');
  return ctx.http.postJson(identityUrl(service), { type: 'anonymous' });
}

/** An anonymous registration's answer that must have succeeded, with an identity assertion and a claim token. */
export async function anonymousFrom(ctx: CheckContext, answer: Answer): Promise<Registration> {
  expectStatus(answer, 200, 'anonymous registration');
  const registration = readRegistration(answer, await ctx.service(), 'anonymous registration');
  if (!registration.assertion || !registration.claimToken) throw new CheckFailed(`anonymous registration: no identity assertion or claim token in ${answer.text}`);
  return registration;
}

export async function registerAnonymous(ctx: CheckContext): Promise<Registration> {
  return anonymousFrom(ctx, await registerAnonymousAnswer(ctx));
}

export async function registerServiceAuth(ctx: CheckContext, email = ctx.email()): Promise<Registration> {
  const service = await ctx.service();
  requireThat(service.identityTypes.includes('service_auth'), 'the service does not advertise service_auth registration');
  const answer = await ctx.http.postJson(identityUrl(service), { type: 'service_auth', login_hint: email });
  expectStatus(answer, 200, 'service_auth registration');
  const registration = readRegistration(answer, service, 'service_auth registration');
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
  const token = readOrFail(readTokenResponse(answer.json), answer, 'jwt-bearer exchange');
  return { answer, accessToken: token.accessToken, scope: token.scopes?.join(' ') };
}

/** Starts (or re-mints) a claim attempt in the current dialect's body form. */
export async function startClaim(ctx: CheckContext, claimToken: string, email = ctx.email()): Promise<ClaimAttempt> {
  const service = await ctx.service();
  requireThat(service.endpoints.claim, 'the service advertises no claim_endpoint');
  const answer = await ctx.http.postJson(service.endpoints.claim, { type: 'service_auth', claim_token: claimToken, login_hint: email });
  expectStatus(answer, 200, 'claim start');
  const { attempt } = readOrFail(readForFlow(readClaimStartedEnvelope, answer, service), answer, 'claim start');
  return { answer, verificationUri: attempt.verificationUri, userCode: attempt.agentCode, interval: attempt.interval };
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
    const { identity } = readOrFail(readForFlow(readClaimedEnvelope, answer, await ctx.service()), answer, 'read-back completion');
    return { registration, assertion: identity.assertion, refreshToken: identity.refreshToken?.value, code, completion: answer };
  });
}
