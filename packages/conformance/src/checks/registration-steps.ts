/**
 * Helpers of the registration, token and revocation checks: reading answers (error codes, cache
 * headers, envelope fields, timestamps) and taking JWTs apart without verifying them.
 */
import { CheckFailed, expectEqual, expectThat, requireThat } from '../check.ts';
import type { CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import { registerAnonymous, type Registration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';

/**
 * One anonymous registration for the checks that only read it or exchange its assertion (never
 * revoke it), so that a run spends few registrations against the service's rate limits.
 */
export function sharedAnonymous(ctx: CheckContext): Promise<Registration> {
  return ctx.once('registration-steps:shared-anonymous', () => registerAnonymous(ctx));
}

/** The identity endpoint, which only the `current` and `v0.7` dialects have. */
export async function identityEndpoint(ctx: CheckContext): Promise<string> {
  const service = await ctx.service();
  requireThat(service.dialects.current || service.dialects.v07, 'the service advertises no agent_auth.identity_endpoint (only v0.1 register_uri)');
  return service.endpoints.identity;
}

/** Fails unless the answer is `status` with `{"error": code}`; `codes` lists the accepted spellings. */
export function expectError(answer: Answer, status: number, codes: string | string[], what: string): void {
  const accepted = typeof codes === 'string' ? [codes] : codes;
  if (answer.status === status && accepted.includes(answer.json?.error)) return;
  throw new CheckFailed(`${what}: expected ${status} ${accepted.join(' or ')}, got ${describeAnswer(answer)}`);
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
  expectThat(
    cacheDirectives(answer).includes('no-store'),
    `${what}: expected Cache-Control: no-store, got ${answer.headers.get('cache-control') === null ? 'no Cache-Control header' : `Cache-Control: ${answer.headers.get('cache-control')}`} (${describeAnswer(answer)})`,
  );
}

export function expectPragmaNoCache(answer: Answer, what: string): void {
  const pragma = answer.headers.get('pragma');
  expectThat(
    (pragma ?? '').toLowerCase().split(',').map((p) => p.trim()).includes('no-cache'),
    `${what}: expected Pragma: no-cache, got ${pragma === null ? 'no Pragma header' : `Pragma: ${pragma}`} (${describeAnswer(answer)})`,
  );
}

/** `a.b.c` of a JSON body; undefined when any step is missing. */
export function at(body: unknown, path: string): unknown {
  let value: unknown = body;
  for (const key of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

export type FieldKind = 'string' | 'jws' | 'future-iso' | 'strings' | 'url' | 'six-digits' | 'positive-number';

/** Why `value` is not of `kind`, or undefined when it is. */
function fieldProblem(value: unknown, kind: FieldKind, now: number): string | undefined {
  if (value === undefined) return 'is missing';
  const shown = JSON.stringify(value)?.slice(0, 80);
  switch (kind) {
    case 'string':
      return typeof value === 'string' && value !== '' ? undefined : `is ${shown}, not a non-empty string`;
    case 'jws':
      return typeof value === 'string' && decodeJwt(value) ? undefined : `is ${shown}, not a compact JWS`;
    case 'future-iso': {
      if (typeof value !== 'string' || !ISO_8601.test(value) || Number.isNaN(Date.parse(value))) return `is ${shown}, not an ISO-8601 timestamp`;
      return Date.parse(value) > now ? undefined : `is ${value}, which is not in the future`;
    }
    case 'strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string') ? undefined : `is ${shown}, not an array of strings`;
    case 'url':
      return typeof value === 'string' && URL.canParse(value) ? undefined : `is ${shown}, not an absolute URL`;
    case 'six-digits':
      return typeof value === 'string' && /^\d{6}$/.test(value) ? undefined : `is ${shown}, not six digits`;
    case 'positive-number':
      return typeof value === 'number' && value > 0 ? undefined : `is ${shown}, not a positive number`;
  }
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

/** Fails naming every field of `fields` (path → kind) that the body lacks or that has the wrong form. */
export function expectFields(answer: Answer, fields: Record<string, FieldKind>, what: string): void {
  const now = Date.now();
  const problems = Object.entries(fields).flatMap(([path, kind]) => {
    const problem = fieldProblem(at(answer.json, path), kind, now);
    return problem ? [`${path} ${problem}`] : [];
  });
  expectThat(problems.length === 0, `${what}: ${problems.join('; ')} (${describeAnswer(answer)})`);
}

/** The fields each dialect's envelope carries for a registration of this kind (profile §1). */
export function envelopeFields(service: Discovered, kind: 'anonymous' | 'service_auth' | 'identity_assertion'): Record<string, FieldKind> {
  const fields: Record<string, FieldKind> = {};
  if (service.dialects.current) {
    Object.assign(fields, { id: 'string', type: 'string' });
    if (kind !== 'service_auth') Object.assign(fields, { 'identity.assertion': 'jws', 'identity.expires_at': 'future-iso' });
    if (kind === 'anonymous') Object.assign(fields, { 'scopes.pre_claim': 'strings', 'scopes.post_claim': 'strings' });
    if (kind === 'service_auth') Object.assign(fields, { 'scopes.post_claim': 'strings', 'claim.attempt.verification_uri': 'url', 'claim.attempt.expires_at': 'future-iso' });
    if (kind === 'identity_assertion') Object.assign(fields, { scopes: 'strings' });
    if (kind !== 'identity_assertion') Object.assign(fields, { 'claim.token': 'string', 'claim.expires_at': 'future-iso', 'claim.url': 'url' });
  }
  if (service.dialects.v07) {
    Object.assign(fields, { registration_id: 'string', registration_type: 'string' });
    if (kind !== 'service_auth') Object.assign(fields, { identity_assertion: 'jws', assertion_expires: 'future-iso' });
    if (kind === 'anonymous') Object.assign(fields, { pre_claim_scopes: 'strings' });
    if (kind === 'identity_assertion') Object.assign(fields, { scopes: 'strings' });
    if (kind !== 'identity_assertion') Object.assign(fields, { post_claim_scopes: 'strings', claim_token: 'string', claim_url: 'url', claim_token_expires: 'future-iso' });
    if (kind === 'service_auth') {
      Object.assign(fields, { 'claim.user_code': 'six-digits', 'claim.expires_in': 'positive-number', 'claim.verification_uri': 'url', 'claim.interval': 'positive-number' });
    }
  }
  return fields;
}

/** Fails unless both envelopes, where both are spoken, name the same registration and type. */
export function expectEnvelopesAgree(answer: Answer, service: Discovered, type: string, what: string): void {
  const body = answer.json ?? {};
  if (service.dialects.current) expectEqual(body.type, type, `${what}: type`);
  if (service.dialects.v07) expectEqual(body.registration_type, type, `${what}: registration_type`);
  if (service.dialects.current && service.dialects.v07) {
    expectThat(body.id === body.registration_id, `${what}: id ${JSON.stringify(body.id)} and registration_id ${JSON.stringify(body.registration_id)} name different registrations`);
  }
}

/** The scopes a registration answer lists under `pre_claim` (either envelope); undefined when it lists none. */
export function preClaimScopes(answer: Answer): string[] | undefined {
  return strings(at(answer.json, 'scopes.pre_claim') ?? answer.json?.pre_claim_scopes);
}

/** The scopes a registration holds once claimed: a settled `scopes` list, else `post_claim` (either envelope). */
export function postClaimScopes(answer: Answer): string[] | undefined {
  const scopes = answer.json?.scopes;
  return strings(Array.isArray(scopes) ? scopes : (at(answer.json, 'scopes.post_claim') ?? answer.json?.post_claim_scopes));
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : undefined;
}

/** A space-separated `scope` as a sorted list (order carries no meaning, RFC 6749 §3.3). */
export function scopeSet(scope: unknown): string[] | undefined {
  return typeof scope === 'string' ? [...new Set(scope.split(' ').filter(Boolean))].sort() : undefined;
}

export const sameScopes = (a: readonly string[], b: readonly string[]): boolean => JSON.stringify([...new Set(a)].sort()) === JSON.stringify([...new Set(b)].sort());

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** The header and payload of a compact JWS, unverified; undefined when it is not one. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const [header, payload] = parts.slice(0, 2).map((part) => JSON.parse(Buffer.from(part!, 'base64url').toString('utf8')) as unknown);
    if (!isObject(header) || !isObject(payload)) return undefined;
    return { header, payload };
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The same JWS with one payload claim changed and the original signature kept: what a forger sends. */
export function tamperedJwt(token: string, claim: string, value: unknown): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  claims[claim] = value;
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

/** RFC 8725 §3.11: `typ` compares case-insensitively, and `x` means `application/x`. */
export function typIs(typ: unknown, expected: string): boolean {
  if (typeof typ !== 'string') return false;
  const normalized = typ.toLowerCase();
  return normalized === expected || normalized === `application/${expected}`;
}

/** Every key path (`claim.attempt.verification_uri`) of a JSON value, sorted: the shape of an answer. */
export function keyPaths(value: unknown, prefix = ''): string[] {
  if (!isObject(value)) return [];
  return Object.entries(value)
    .flatMap(([key, child]) => [prefix + key, ...keyPaths(child, `${prefix}${key}.`)])
    .sort();
}

/** Names of credential members anywhere in a JSON value. */
export function credentialKeys(value: unknown): string[] {
  const credentials = new Set(['assertion', 'identity_assertion', 'access_token', 'refresh_token', 'api_key']);
  return keyPaths(value).filter((path) => credentials.has(path.split('.').at(-1)!));
}
