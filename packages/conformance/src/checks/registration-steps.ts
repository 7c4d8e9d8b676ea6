/**
 * Reading registration answers for the registration, token, revocation and ceremony checks: the
 * fields each dialect's envelope carries, their forms (timestamps, JWS, URLs), and the scopes.
 */
import { expectEqual, expectThat, requireThat } from '../check.ts';
import type { CheckContext } from '../context.ts';
import type { Discovered } from '../discovery.ts';
import { anonymousFrom, identityUrl, NO_IDENTITY_ENDPOINT, registerAnonymousAnswer, type Registration } from '../flows.ts';
import { describeAnswer, type Answer } from '../http.ts';
import { decodeJwt } from '../jwt.ts';

/**
 * One anonymous registration for the checks that only read it or exchange its assertion (never
 * revoke it), so that a run spends few registrations against the service's rate limits.
 */
export function sharedAnonymous(ctx: CheckContext): Promise<Registration> {
  return ctx.once('registration-steps:shared-anonymous', async () => anonymousFrom(ctx, await sharedAnonymousAnswer(ctx)));
}

/** That registration's answer as it came, for the checks that judge its shape before anything reads it. */
export function sharedAnonymousAnswer(ctx: CheckContext): Promise<Answer> {
  return ctx.once('registration-steps:shared-anonymous-answer', () => registerAnonymousAnswer(ctx));
}

/** The identity endpoint, which only the `current` and `v0.7` dialects have. */
export async function identityEndpoint(ctx: CheckContext): Promise<string> {
  const service = await ctx.service();
  requireThat(service.dialects.current || service.dialects.v07, NO_IDENTITY_ENDPOINT);
  return identityUrl(service);
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

/** The scopes an unclaimed registration holds now; undefined when it lists none. */
export function preClaimScopes(registration: Registration): string[] | undefined {
  return registration.scopes.kind === 'claimable' ? registration.scopes.preClaim : undefined;
}

/** The scopes a registration holds once claimed: its settled scopes, else what claiming gives. */
export function postClaimScopes(registration: Registration): string[] {
  return registration.scopes.kind === 'granted' ? registration.scopes.scopes : registration.scopes.postClaim;
}

/** A space-separated `scope` as a sorted list (order carries no meaning, RFC 6749 §3.3). */
export function scopeSet(scope: unknown): string[] | undefined {
  return typeof scope === 'string' ? [...new Set(scope.split(' ').filter(Boolean))].sort() : undefined;
}

export const sameScopes = (a: readonly string[], b: readonly string[]): boolean => JSON.stringify([...new Set(a)].sort()) === JSON.stringify([...new Set(b)].sort());


