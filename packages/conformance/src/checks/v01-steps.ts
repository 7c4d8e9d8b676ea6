/**
 * The v0.1 dialect's steps (`/agent/auth`, protocol-reference §7): register at `register_uri`, start a
 * claim at `claim_uri`, the person reads the emailed code, the agent completes at `<claim_uri>/complete`.
 * Credentials come back directly (`credential`, an API key or an access token) and are used as Bearer
 * tokens on the protected API. Each step sends one request the way a conforming v0.1 agent would.
 */
import { readV01RegistrationEnvelope, VERIFIED_EMAIL, withoutTrailingSlash } from '@authmd/protocol';
import { CheckFailed, expectThat, requireThat } from '../check.ts';
import type { CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import { expectStatus, readOrFail } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import type { FieldKind } from './registration-steps.ts';

export const NO_V01 = 'the service does not advertise the v0.1 dialect (no agent_auth.register_uri)';

export interface V01Endpoints {
  service: Discovered;
  register: string;
  claim: string;
  complete: string;
}

const isString = (value: unknown): value is string => typeof value === 'string' && value !== '';
const strings = (value: unknown): string[] | undefined => (Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined);

/** The v0.1 endpoints; skipped when the service does not advertise v0.1 or its claim_uri. */
export async function v01Endpoints(ctx: CheckContext): Promise<V01Endpoints> {
  const service = await ctx.service();
  requireThat(service.dialects.v01, NO_V01);
  const agentAuth = service.agentAuth;
  requireThat(isString(agentAuth.claim_uri), 'the service advertises v0.1 (register_uri) but no agent_auth.claim_uri (discovery.agent-auth-v01 reports it)');
  return { service, register: agentAuth.register_uri, claim: agentAuth.claim_uri, complete: `${withoutTrailingSlash(agentAuth.claim_uri)}/complete` };
}

/** v0.1 anonymous registration (an API key at once) is advertised: `anonymous.credential_types_supported` lists `api_key`. */
export async function requireV01Anonymous(ctx: CheckContext): Promise<V01Endpoints> {
  const endpoints = await v01Endpoints(ctx);
  const types = strings(endpoints.service.agentAuth.anonymous?.credential_types_supported);
  requireThat(types?.includes('api_key'), 'the service does not advertise v0.1 anonymous registration (agent_auth.anonymous.credential_types_supported without api_key)');
  return endpoints;
}

/** v0.1 verified_email registration is advertised: `identity_assertion.assertion_types_supported` lists it. */
export async function requireVerifiedEmail(ctx: CheckContext): Promise<V01Endpoints> {
  const endpoints = await v01Endpoints(ctx);
  const types = strings(endpoints.service.agentAuth.identity_assertion?.assertion_types_supported);
  requireThat(types?.includes(VERIFIED_EMAIL), `the service does not advertise v0.1 ${VERIFIED_EMAIL} registration (agent_auth.identity_assertion.assertion_types_supported)`);
  return endpoints;
}

export interface V01Registration {
  answer: Answer;
  id: string;
  /** The credential handed out with the registration (its value). */
  credential: string | undefined;
  /** The credential's scopes. */
  scopes: string[] | undefined;
  claimToken: string | undefined;
  postClaimScopes: string[] | undefined;
}

/** A v0.1 registration answer, read; fails (CheckFailed) naming what does not read. */
export function readV01(answer: Answer, what: string): V01Registration {
  const { id, credential, claim } = readOrFail(readV01RegistrationEnvelope(answer.json), answer, what);
  return { answer, id, credential: credential?.value, scopes: credential?.scopes, claimToken: claim?.token, postClaimScopes: claim?.postClaimScopes };
}

/** The fields of a v0.1 anonymous registration answer (protocol-reference §7.2). */
export const ANONYMOUS_FIELDS: Record<string, FieldKind> = {
  registration_id: 'string',
  registration_type: 'string',
  credential_type: 'string',
  credential: 'string',
  scopes: 'strings',
  claim_token: 'string',
  claim_url: 'url',
  claim_token_expires: 'future-iso',
  post_claim_scopes: 'strings',
};

/** The fields of a v0.1 verified_email registration answer: a claim handle, no credential yet. */
export const VERIFIED_EMAIL_FIELDS: Record<string, FieldKind> = {
  registration_id: 'string',
  registration_type: 'string',
  claim_token: 'string',
  claim_url: 'url',
  claim_token_expires: 'future-iso',
  post_claim_scopes: 'strings',
};

/** `POST register_uri {type:"anonymous", requested_credential_type:"api_key"}`; the raw answer. */
export async function registerV01AnonymousAnswer(ctx: CheckContext): Promise<Answer> {
  const { register } = await requireV01Anonymous(ctx);
  return ctx.http.postJson(register, { type: 'anonymous', requested_credential_type: 'api_key' });
}

/** A v0.1 anonymous registration answer that must succeed, with an API key and a claim token. */
function successfulAnonymous(answer: Answer): V01Registration {
  expectStatus(answer, 200, 'v0.1 anonymous registration');
  const registration = readV01(answer, 'v0.1 anonymous registration');
  if (!registration.credential || !registration.claimToken) throw new CheckFailed(`v0.1 anonymous registration: no credential or claim_token in ${describeAnswer(answer)}`);
  return registration;
}

/** A new v0.1 anonymous registration that must succeed. */
export async function registerV01Anonymous(ctx: CheckContext): Promise<V01Registration> {
  return successfulAnonymous(await registerV01AnonymousAnswer(ctx));
}

/** The answer of one v0.1 anonymous registration per run, for the checks that only read it (never claim or revoke it). */
export function sharedV01AnonymousAnswer(ctx: CheckContext): Promise<Answer> {
  return ctx.once('v01:shared-anonymous', () => registerV01AnonymousAnswer(ctx));
}

/** That shared registration, which must have succeeded. */
export async function sharedV01Anonymous(ctx: CheckContext): Promise<V01Registration> {
  return successfulAnonymous(await sharedV01AnonymousAnswer(ctx));
}

/** The credential type a verified_email registration asks for: access_token when listed (the expiring kind), else the first listed. */
export function verifiedEmailCredentialType(service: Discovered): string {
  const types = strings(service.agentAuth.identity_assertion?.credential_types_supported) ?? [];
  return types.includes('access_token') ? 'access_token' : (types[0] ?? 'access_token');
}

/** `POST register_uri` with a verified_email identity assertion; the raw answer. */
export async function registerVerifiedEmailAnswer(ctx: CheckContext, email: string, credentialType?: string): Promise<Answer> {
  const { register, service } = await requireVerifiedEmail(ctx);
  return ctx.http.postJson(register, {
    type: 'identity_assertion',
    assertion_type: VERIFIED_EMAIL,
    assertion: email,
    requested_credential_type: credentialType ?? verifiedEmailCredentialType(service),
  });
}

/** `POST claim_uri {claim_token, email}`; the raw answer. */
export async function startV01ClaimAnswer(ctx: CheckContext, claimToken: string, email: string): Promise<Answer> {
  const { claim } = await v01Endpoints(ctx);
  return ctx.http.postJson(claim, { claim_token: claimToken, email });
}

/** `POST <claim_uri>/complete {claim_token, otp}`; the raw answer. */
export async function completeV01Answer(ctx: CheckContext, claimToken: string, otp: string): Promise<Answer> {
  const { complete } = await v01Endpoints(ctx);
  return ctx.http.postJson(complete, { claim_token: claimToken, otp });
}

/** The person reads the code the service emailed to `email`; fails (CheckFailed) when they could not. */
export async function emailedCode(ctx: CheckContext, email: string): Promise<string> {
  ctx.note(`waiting for the person (${ctx.human.name}) to read the code emailed to ${email}`);
  let code: string;
  try {
    code = await ctx.human.emailedCode(email);
  } catch (error) {
    throw new CheckFailed(`the person could not read a code from the email to ${email}: ${(error as Error).message}`);
  }
  expectThat(/^\d{6}$/.test(code), `the code read from the email to ${email} is not 6 digits: ${JSON.stringify(code)}`);
  return code;
}

/** An anonymous registration with its claim started for `email` (the service has emailed the code). */
export async function startedV01Claim(ctx: CheckContext, email: string): Promise<{ registration: V01Registration; started: Answer }> {
  const registration = await registerV01Anonymous(ctx);
  const started = await startV01ClaimAnswer(ctx, registration.claimToken!, email);
  expectStatus(started, 200, `v0.1 claim start for ${email}`);
  return { registration, started };
}

export interface V01Claimed {
  registration: V01Registration;
  email: string;
  started: Answer;
  code: string;
  /** The `/complete` answer that claimed the registration. */
  completion: Answer;
}

/**
 * A v0.1 anonymous registration claimed by email: register, start the claim, the person reads the
 * emailed code, `/complete`. One per run; the completion is not judged here (its check does that).
 */
export function claimedV01(ctx: CheckContext): Promise<V01Claimed> {
  return ctx.once('v01:claimed-anonymous', async () => {
    const email = ctx.email('v01-claim');
    const { registration, started } = await startedV01Claim(ctx, email);
    const code = await emailedCode(ctx, email);
    const completion = await completeV01Answer(ctx, registration.claimToken!, code);
    return { registration, email, started, code, completion };
  });
}
