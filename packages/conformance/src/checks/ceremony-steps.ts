/**
 * Steps shared by the ceremony and refresh groups: reading error answers, what a claimed assertion must
 * carry, claims made for one check (or one group) alone, and polling the v0.7 claim grant the way
 * RFC 8628 §3.5 tells a client to.
 */
import { decodeJwt } from 'jose';
import { CheckFailed, expectThat } from '../check.ts';
import type { CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import { completeAnswer, exchange, pollAnswer, registerServiceAuth, type Claimed, type Registration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';

/** What RFC 8628 §3.2 tells a client to assume when the service names no `interval`. */
export const DEFAULT_INTERVAL_SECONDS = 5;
/** A six-digit code no page showed (any will do where the code is not what is checked). */
export const SOME_CODE = '000000';

/**
 * Fails unless the answer is one of `expected`, each written `"<status> <error>"` (`"401 invalid_user_code"`).
 */
export function expectError(answer: Answer, what: string, ...expected: string[]): void {
  const seen = `${answer.status} ${String(answer.json?.error)}`;
  if (expected.includes(seen)) return;
  throw new CheckFailed(`${what}: expected ${expected.join(' or ')}, got ${describeAnswer(answer)}`);
}

/** Fails when a refusal nevertheless hands out an assertion, a refresh token or an access token. */
export function expectNoCredentials(answer: Answer, what: string): void {
  const body = (answer.json ?? {}) as Record<string, any>;
  const leaked = new Set<string>();
  if (body.identity?.assertion || body.identity_assertion) leaked.add('an identity assertion');
  if (body.identity?.refresh_token) leaked.add('a refresh token');
  if (body.access_token) leaked.add('an access token');
  expectThat(leaked.size === 0, `${what}: expected a refusal without credentials, got one with ${[...leaked].join(' and ')}: ${describeAnswer(answer)}`);
}

/** Another six-digit code than `code`. */
export function otherCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

/** The claims of a JWT, read without verifying it; a failure when it is not a JWT. */
export function jwtClaims(token: unknown, what: string): Record<string, unknown> {
  try {
    return decodeJwt(String(token));
  } catch {
    throw new CheckFailed(`${what} is not a JWT: ${JSON.stringify(token)}`);
  }
}

/** The assertion names the person who claimed: its `email` is theirs (case aside). */
export function expectEmailOf(assertion: unknown, email: string, what: string): void {
  const claims = jwtClaims(assertion, what);
  expectThat(
    typeof claims.email === 'string' && claims.email.toLowerCase() === email.toLowerCase(),
    `${what} should carry the email of the person who claimed it (${email}), has email ${JSON.stringify(claims.email)}`,
  );
}

/** The scopes a registration gets once claimed, as its registration response lists them (else `scopes_supported`). */
export function postClaimScopes(registration: Registration, service: Discovered): string[] {
  const body = (registration.answer.json ?? {}) as Record<string, any>;
  const listed = body.scopes?.post_claim ?? body.post_claim_scopes;
  return Array.isArray(listed) ? listed.filter((scope): scope is string => typeof scope === 'string') : service.scopes;
}

/** A token answer grants every scope in `expected` (its `scope` member, space-separated). */
export function expectScopes(answer: Answer, expected: string[], what: string): void {
  const scope = answer.json?.scope;
  expectThat(typeof scope === 'string', `${what}: the token response names no scope: ${describeAnswer(answer)}`);
  const granted = scope.split(' ');
  const missing = expected.filter((wanted) => !granted.includes(wanted));
  expectThat(missing.length === 0, `${what}: expected the post-claim scopes ${expected.join(' ')}, got scope "${scope}" (missing ${missing.join(' ')})`);
}

/** An exchange of a claimed assertion grants the post-claim scopes. */
export async function expectPostClaimExchange(ctx: CheckContext, assertion: string, registration: Registration, what: string): Promise<void> {
  const tokens = await exchange(ctx, assertion);
  expectScopes(tokens.answer, postClaimScopes(registration, await ctx.service()), what);
}

/**
 * A service_auth registration claimed by read-back for one purpose (`key`), separate from the run's
 * shared `claimedByReadBack`: for checks that spend or destroy what the claim gave (refresh tokens).
 */
export function claimedFor(ctx: CheckContext, key: string): Promise<Claimed> {
  return ctx.once(`claimed-read-back:${key}`, async () => {
    const registration = await registerServiceAuth(ctx);
    ctx.note(`waiting for the person (${ctx.human.name}) to authorize the agent at ${registration.verificationUri}`);
    const code = await ctx.human.readBack(registration.verificationUri!, ctx.email());
    const completion = await completeAnswer(ctx, registration.claimToken!, code);
    if (completion.status !== 200) throw new CheckFailed(`read-back completion: expected 200, got ${describeAnswer(completion)}`);
    const identity = completion.json?.identity ?? {};
    const assertion = identity.assertion ?? completion.json?.identity_assertion;
    if (typeof assertion !== 'string') throw new CheckFailed(`read-back completion: no identity assertion in ${completion.text}`);
    return { registration, assertion, refreshToken: identity.refresh_token?.value, code, completion };
  });
}

/**
 * A service_auth registration nobody has acted on yet. Shared by the checks that only look at a
 * pending claim (an early `/complete`, fast polls), none of which moves it forward.
 */
export function pendingRegistration(ctx: CheckContext): Promise<Registration> {
  return ctx.once('ceremony:pending', () => registerServiceAuth(ctx));
}

export function intervalOf(registration: Registration): number {
  return typeof registration.interval === 'number' && registration.interval > 0 ? registration.interval : DEFAULT_INTERVAL_SECONDS;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Once the person is done on the page: polls the claim grant as RFC 8628 §3.5 tells a client to, never
 * sooner than `interval` seconds after the previous poll (`lastPollAt`), 5 s more after each `slow_down`,
 * until the answer is neither `authorization_pending` nor `slow_down` — for two intervals at most, since
 * the outcome is already decided (then the last answer).
 */
export async function pollUntilSettled(ctx: CheckContext, claimToken: string, interval: number, lastPollAt: number): Promise<Answer> {
  const deadlineMs = Date.now() + 2 * interval * 1000 + 1000;
  let wait = interval;
  let last = lastPollAt;
  for (;;) {
    await sleep(Math.max(0, last + wait * 1000 + 100 - Date.now()));
    const answer = await pollAnswer(ctx, claimToken);
    last = Date.now();
    const error = answer.json?.error;
    if (answer.status !== 400 || (error !== 'authorization_pending' && error !== 'slow_down')) return answer;
    if (error === 'slow_down') wait += 5;
    if (last + wait * 1000 > deadlineMs) return answer;
  }
}
