import { z } from 'zod';
import type { Parsed } from './schemas.ts';

/**
 * The values response bodies carry, as zod schemas for the readers (the inverse of the shapers).
 * Messages name only what is wrong: `parseWith` puts the member's path in front
 * (`identity.expires_at: must be an ISO-8601 time`).
 */

export type Json = Record<string, unknown>;

/** "is required" when the member is absent, "must be <what>" otherwise. */
export const expected = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${what}`);

/** The longest lifetime a reader accepts, in seconds (about 317 years): `now + seconds` is then always a valid time. */
export const MAX_LIFETIME_SECONDS = 1e10;

export const text = z.string({ error: expected('a string') }).min(1, 'must not be empty');

/** An ISO-8601 time with seconds and a zone, as epoch ms. */
export const instant = z.iso.datetime({ offset: true, error: expected('an ISO-8601 time') }).transform((value) => Date.parse(value));

/** A lifetime in seconds (`expires_in`). */
export const seconds = z
  .number({ error: expected('a number of seconds') })
  .min(0, 'must not be negative')
  .max(MAX_LIFETIME_SECONDS, `must be at most ${MAX_LIFETIME_SECONDS} seconds`);

/** A polling interval in seconds (RFC 8628 `interval`). */
export const interval = seconds.refine((value) => value > 0, 'must be more than 0 seconds');

export const strings = z.array(z.string({ error: expected('a string') }), { error: expected('a list of strings') });

export const object = <S extends z.core.$ZodLooseShape>(shape: S, what = 'an object') => z.object(shape, { error: expected(what) });

/** A member whose value this dialect does not read (another dialect's use of the same key). */
export const ignored = z.unknown().optional().transform((): undefined => undefined);

/** A member read by the schema `choose` picks from its raw value (a list or an object, say). */
export function shaped<T>(choose: (value: unknown) => z.ZodType<T>) {
  // `optional()` first: an absent member still reaches `choose`, whose schema says whether it is required.
  return z.unknown().optional().transform((value, ctx): T => {
    const result = choose(value).safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.issues.push({ ...issue, input: value } as z.core.$ZodRawIssue);
    return z.NEVER;
  });
}

/** An optional member: absent or null both read as absent. */
export const maybe = <S extends z.ZodType>(schema: S) => schema.nullish().transform((value) => value ?? undefined);

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A body that is not a JSON object gets one message before any schema runs. */
export function jsonObject(body: unknown): Parsed<Json> {
  return isObject(body) ? { ok: true, value: body } : { ok: false, message: 'body: must be a JSON object' };
}

/**
 * Members that only travel together: for each present member of `rules`, the members it names must
 * be present too. Adds an issue per missing one ("claim_url: is required with claim_token"); false
 * when there was any.
 */
export function requireTogether(ctx: z.RefinementCtx, wire: Json, rules: Record<string, readonly string[]>): boolean {
  let complete = true;
  for (const [present, members] of Object.entries(rules)) {
    if (wire[present] === undefined) continue;
    for (const member of members.filter((name) => wire[name] === undefined)) {
      ctx.issues.push({ code: 'custom', message: `is required with ${present}`, path: [member], input: undefined });
      complete = false;
    }
  }
  return complete;
}

/** The members of `value` whose value is not undefined (views carry no `key: undefined`). */
export function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, member]) => member !== undefined)) as T;
}
