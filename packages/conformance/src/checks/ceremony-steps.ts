/**
 * Steps shared by the ceremony and refresh groups: reading error answers, what a claimed assertion must
 * carry, claims made for one check (or one group) alone, and polling the v0.7 claim grant the way
 * RFC 8628 §3.5 tells a client to.
 */
import { readErrorBody } from '@authmd/protocol';
import { expectThat } from '../check.ts';
import type { CheckContext } from '../context.ts';
import { exchange, pollAnswer, registerServiceAuth, type Registration } from '../flows.ts';
import { mustDecodeJwt } from '../jwt.ts';
import { postClaimScopes } from './registration-steps.ts';
import { describeAnswer, type Answer } from '../http.ts';

/** What RFC 8628 §3.2 tells a client to assume when the service names no `interval`. */
export const DEFAULT_INTERVAL_SECONDS = 5;
/** A six-digit code no page showed (any will do where the code is not what is checked). */
export const SOME_CODE = '000000';

/** Another six-digit code than `code`. */
export function otherCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

/** The assertion names the person who claimed: its `email` is theirs (case aside). */
export function expectEmailOf(assertion: unknown, email: string, what: string): void {
  const claims = mustDecodeJwt(assertion, what).payload;
  expectThat(
    typeof claims.email === 'string' && claims.email.toLowerCase() === email.toLowerCase(),
    `${what} should carry the email of the person who claimed it (${email}), has email ${JSON.stringify(claims.email)}`,
  );
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
  expectScopes(tokens.answer, postClaimScopes(registration), what);
}

/**
 * A service_auth registration nobody has acted on yet. Shared by the checks that only look at a
 * pending claim (an early `/complete`, fast polls), none of which moves it forward.
 */
export function pendingRegistration(ctx: CheckContext): Promise<Registration> {
  return ctx.once('ceremony:pending', () => registerServiceAuth(ctx));
}

/** The polling interval of an attempt (a registration's, or a claim start's). */
export function intervalOf(attempt: { interval: number | undefined }): number {
  return attempt.interval ?? DEFAULT_INTERVAL_SECONDS;
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
    const refusal = readErrorBody(answer.json);
    const error = refusal.ok ? refusal.value.error : undefined;
    if (answer.status !== 400 || (error !== 'authorization_pending' && error !== 'slow_down')) return answer;
    if (error === 'slow_down') wait += 5;
    if (last + wait * 1000 > deadlineMs) return answer;
  }
}
