/**
 * How checks judge an answer: the error it must be, the success it must be, the headers it must carry,
 * and the credentials a refusal must not carry. Each failure quotes the answer.
 */
import { CheckFailed, expectThat } from '../check.ts';
import { callApi } from '../flows.ts';
import type { CheckContext } from '../context.ts';
import { describeAnswer, type Answer } from '../http.ts';

/** Fails unless the answer is one of `expected`, each written `"<status> <error>"` (`"401 invalid_user_code"`). */
export function expectError(answer: Answer, what: string, ...expected: string[]): void {
  const seen = `${answer.status} ${String(answer.json?.error)}`;
  if (expected.includes(seen)) return;
  throw new CheckFailed(`${what}: expected ${expected.join(' or ')}, got ${describeAnswer(answer)}`);
}

/** RFC 7521 §5.2 / RFC 7523 §3.1: an unusable assertion at the token endpoint is 400 `invalid_grant`. */
export function expectInvalidGrant(answer: Answer, what: string): void {
  expectError(answer, what, '400 invalid_grant');
}

/** Fails unless the answer is a 4xx with one of `codes` as its `error` (for codes whose status no document fixes). */
export function expectRefusal(answer: Answer, codes: string[], what: string): void {
  if (answer.status >= 400 && answer.status < 500 && codes.includes(answer.json?.error)) return;
  throw new CheckFailed(`${what}: expected a 4xx with error ${codes.join(' or ')}, got ${describeAnswer(answer)}`);
}

/** Fails unless the answer is `status` (default: any 2xx). */
export function expectSuccess(answer: Answer, what: string, status?: number): void {
  const ok = status === undefined ? answer.status >= 200 && answer.status < 300 : answer.status === status;
  expectThat(ok, `${what}: expected ${status ?? '2xx'}, got ${describeAnswer(answer)}`);
}

/** The directives of `Cache-Control`, lower case. */
function cacheDirectives(answer: Answer): string[] {
  return (answer.headers.get('cache-control') ?? '').split(',').map((directive) => directive.trim().toLowerCase());
}

export function expectNoStore(answer: Answer, what: string): void {
  const header = answer.headers.get('cache-control');
  expectThat(
    cacheDirectives(answer).includes('no-store'),
    `${what}: expected Cache-Control: no-store, got ${header === null ? 'no Cache-Control header' : `Cache-Control: ${header}`} (${describeAnswer(answer)})`,
  );
}

export function expectPragmaNoCache(answer: Answer, what: string): void {
  const pragma = answer.headers.get('pragma');
  expectThat(
    (pragma ?? '').toLowerCase().split(',').map((p) => p.trim()).includes('no-cache'),
    `${what}: expected Pragma: no-cache, got ${pragma === null ? 'no Pragma header' : `Pragma: ${pragma}`} (${describeAnswer(answer)})`,
  );
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every key path (`claim.attempt.verification_uri`) of a JSON value, sorted: the shape of an answer. */
export function keyPaths(value: unknown, prefix = ''): string[] {
  if (!isObject(value)) return [];
  return Object.entries(value)
    .flatMap(([key, child]) => [prefix + key, ...keyPaths(child, `${prefix}${key}.`)])
    .sort();
}

const CREDENTIAL_MEMBERS = new Set(['assertion', 'identity_assertion', 'access_token', 'refresh_token', 'api_key']);

/** Paths of credential members anywhere in a JSON value (a claim token is not one: it needs the person). */
export function credentialKeys(value: unknown): string[] {
  return keyPaths(value).filter((path) => CREDENTIAL_MEMBERS.has(path.split('.').at(-1)!));
}

const CREDENTIAL_NAMES: Record<string, string> = {
  assertion: 'an identity assertion',
  identity_assertion: 'an identity assertion',
  refresh_token: 'a refresh token',
  access_token: 'an access token',
  api_key: 'an API key',
};

/** The kinds of credential an answer carries, in words (`an identity assertion`, `a refresh token`…). */
function credentialsIn(answer: Answer): string[] {
  return [...new Set(credentialKeys(answer.json).map((path) => CREDENTIAL_NAMES[path.split('.').at(-1)!]!))];
}

/** Fails when a refusal nevertheless hands out an assertion, a refresh token or an access token. */
export function expectNoCredentials(answer: Answer, what: string): void {
  const leaked = credentialsIn(answer);
  expectThat(leaked.length === 0, `${what}: expected a refusal without credentials, got one with ${leaked.join(' and ')}: ${describeAnswer(answer)}`);
}

/** A registration that must be refused: a 4xx with no credentials and no claim token in it (under either dialect's name). */
export function expectRegistrationRefused(answer: Answer, what: string): void {
  // Raw on purpose: a refusal is no registration envelope, and a claim token anywhere in it is what is judged.
  const claimToken = answer.json?.claim?.token ?? answer.json?.claim_token;
  const carried = [...credentialsIn(answer), ...(claimToken ? ['a claim token'] : [])];
  if (answer.status >= 400 && answer.status < 500 && carried.length === 0) return;
  const carrying = carried.length ? ` carrying ${carried.join(', ')}` : '';
  throw new CheckFailed(`${what} must be refused with a 4xx and no credentials, got ${describeAnswer(answer)}${carrying}`);
}

/** Fails unless the protected API accepts the bearer token (a 2xx read). */
export async function expectApiAccepts(ctx: CheckContext, accessToken: string, what: string): Promise<void> {
  expectSuccess(await callApi(ctx, accessToken), `the protected API with ${what}`);
}
