/**
 * Steps of the events group: a person signed in through the test provider with a working token,
 * SET delivery as RFC 8935 describes it, and the two things a SET may or may not have done.
 */
import { mediaTypes, readSetErrorBody } from '@authmd/protocol';
import { CheckFailed, requireThat } from '../check.ts';
import { prerequisite, type CheckContext } from '../context.ts';
import { callApi, exchange, exchangeAnswer, readRegistration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { registerWithIdJag, trustedProvider } from '../provider/trusted.ts';
import type { TestProvider } from '../provider/test-provider.ts';

/** RFC 8935 §2.4 (IANA "Security Event Token Error Codes"). */
export const SET_ERROR_CODES = ['invalid_request', 'invalid_key', 'invalid_issuer', 'invalid_audience', 'authentication_failed', 'access_denied'];

export interface EventsSetup {
  provider: TestProvider;
  events: string;
  issuer: string;
}

/** The trusted test provider and the advertised events endpoint; skipped, saying why, without either. */
export async function eventsSetup(ctx: CheckContext): Promise<EventsSetup> {
  const service = await ctx.service();
  requireThat(service.endpoints.events, 'the service advertises no agent_auth.events_endpoint');
  const { provider } = await prerequisite('a clean ID-JAG registration from the test provider', () => trustedProvider(ctx));
  return { provider, events: service.endpoints.events, issuer: service.issuer };
}

/** A person of the provider's, registered here with an ID-JAG, holding an access token that works. */
export interface ProviderPerson {
  email: string;
  /** The service-signed identity assertion of the registration. */
  assertion: string;
  accessToken: string;
}

/** Registers `ctx.email(label)` through the provider and exchanges the assertion; a prerequisite. */
export function providerPerson(ctx: CheckContext, setup: EventsSetup, label: string, claims?: Record<string, unknown>): Promise<ProviderPerson> {
  return prerequisite(`an ID-JAG registration with a working access token (${label})`, async () => {
    const email = ctx.email(label);
    const answer = await registerWithIdJag(ctx, await setup.provider.mintIdJag({ audience: setup.issuer, email, claims }));
    if (answer.status !== 200) throw new CheckFailed(`a clean ID-JAG was refused: ${describeAnswer(answer)}`);
    const assertion = readRegistration(answer, await ctx.service(), 'an ID-JAG registration').assertion;
    if (!assertion) throw new CheckFailed(`an ID-JAG registration: no identity assertion in ${answer.text}`);
    const { accessToken } = await exchange(ctx, assertion);
    const api = await callApi(ctx, accessToken);
    if (api.status !== 200) throw new CheckFailed(`a fresh access token was refused at the API: ${describeAnswer(api)}`);
    return { email, assertion, accessToken };
  });
}

/** RFC 8935 §2.1 push delivery: the compact SET as the body (with another media type if asked). */
export function deliver(ctx: CheckContext, setup: EventsSetup, set: string, contentType: string = mediaTypes.secEvent): Promise<Answer> {
  return ctx.http.send(setup.events, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json' }, body: set });
}

/** What still works for the person: the access token at the API, and the assertion at the token endpoint. */
export async function whatStillWorks(ctx: CheckContext, person: ProviderPerson): Promise<{ api: Answer; exchange: Answer }> {
  return { api: await callApi(ctx, person.accessToken), exchange: await exchangeAnswer(ctx, person.assertion) };
}

/** A refused SET must have had no effect: the person's token and assertion both still work. */
export async function expectNoEffect(ctx: CheckContext, person: ProviderPerson, what: string): Promise<void> {
  const after = await whatStillWorks(ctx, person);
  if (after.api.status !== 200) throw new CheckFailed(`${what} was refused yet took effect: the person's access token now gets ${describeAnswer(after.api)}`);
  if (after.exchange.status !== 200) throw new CheckFailed(`${what} was refused yet took effect: the person's identity assertion now gets ${describeAnswer(after.exchange)}`);
}

/** RFC 8935 §2.3: a refused SET is 400 with a JSON `{err, description}`; `err` from §2.4 (or `expectedErr`). */
export function expectSetRefused(answer: Answer, what: string, expectedErr?: string): void {
  if (answer.status !== 400) throw new CheckFailed(`${what}: expected 400 {"err", "description"} (RFC 8935 §2.3), got ${describeAnswer(answer)}`);
  const refusal = readSetErrorBody(answer.json);
  if (!refusal.ok) {
    throw new CheckFailed(`${what}: the 400 must carry a JSON object with "err" and "description" (RFC 8935 §2.3; ${refusal.message}), got ${describeAnswer(answer)}`);
  }
  const { err } = refusal.value;
  if (expectedErr !== undefined && err !== expectedErr) throw new CheckFailed(`${what}: expected err "${expectedErr}", got ${describeAnswer(answer)}`);
  if (!SET_ERROR_CODES.includes(err)) throw new CheckFailed(`${what}: err "${err}" is not an RFC 8935 §2.4 error code (${SET_ERROR_CODES.join(', ')}): ${describeAnswer(answer)}`);
}
