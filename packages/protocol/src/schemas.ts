import { z } from 'zod';
import { tokenTypes } from './urns.ts';

/**
 * Request bodies, in every form a published client sends them (profile.md §1). Unknown members are
 * dropped, not rejected: real clients send extras such as `client_id` and `resource`.
 */

/** A required, non-empty string of at most `max` characters, whose errors name `field`. */
export const requiredText = (field: string, max: number) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? `${field}: is required` : `${field}: must be a string`) })
    .min(1, `${field}: must not be empty`)
    .max(max, `${field}: must be at most ${max} characters`);
const text = requiredText;

const userCode = z
  .string({ error: (issue) => (issue.input === undefined ? 'user_code: is required' : 'user_code: must be a string') })
  .regex(/^\d{6}$/, 'user_code: must be exactly 6 digits');

// POST /agent/identity

export const anonymousRegistration = z.object({ type: z.literal('anonymous') });

export const serviceAuthRegistration = z.object({
  type: z.literal('service_auth'),
  login_hint: text('login_hint', 320),
});

export const identityAssertionRegistration = z.object({
  type: z.literal('identity_assertion'),
  assertion_type: z
    .literal(tokenTypes.idJag, { error: `assertion_type: must be ${tokenTypes.idJag}` })
    .optional(),
  assertion: text('assertion', 16_384),
});

export const refreshRequest = z.object({
  type: z.literal('refresh'),
  refresh_token: text('refresh_token', 512),
});

export const identityRequests = {
  anonymous: anonymousRegistration,
  service_auth: serviceAuthRegistration,
  identity_assertion: identityAssertionRegistration,
  refresh: refreshRequest,
} as const;

export type IdentityRequest =
  | z.infer<typeof anonymousRegistration>
  | z.infer<typeof serviceAuthRegistration>
  | z.infer<typeof identityAssertionRegistration>
  | z.infer<typeof refreshRequest>;

// POST /agent/identity/claim — four published forms, one command

const claimByServiceAuth = z.object({
  type: z.literal('service_auth'),
  claim_token: text('claim_token', 256),
  login_hint: text('login_hint', 320),
});
const claimByLoginHint = z.object({
  type: z.literal('login_hint'),
  claim_token: text('claim_token', 256),
  login_hint: text('login_hint', 320),
});
const claimByAssertion = z.object({
  type: z.literal('identity_assertion'),
  claim_token: text('claim_token', 256),
  assertion: text('assertion', 16_384),
});
/** The untyped v0.1-era form `{claim_token, email}`; `login_hint` is taken when `email` is absent. */
const claimUntyped = z
  .object({
    claim_token: text('claim_token', 256),
    email: text('email', 320).optional(),
    login_hint: text('login_hint', 320).optional(),
  })
  .refine((body) => body.email !== undefined || body.login_hint !== undefined, { message: 'email: is required' });

export const claimRequests = {
  service_auth: claimByServiceAuth,
  login_hint: claimByLoginHint,
  identity_assertion: claimByAssertion,
} as const;

export type ClaimCommand =
  | { method: 'login_hint'; claimToken: string; loginHint: string }
  | { method: 'identity_assertion'; claimToken: string; assertion: string };

// POST /agent/identity/claim/complete

export const claimCompleteRequest = z.object({
  claim_token: text('claim_token', 256),
  user_code: userCode,
});

// POST /oauth2/token (form fields)

export const jwtBearerRequest = z.object({
  assertion: text('assertion', 16_384),
  resource: z.string().optional(),
  scope: z.string().optional(),
});

export const claimGrantRequest = z.object({
  claim_token: text('claim_token', 256),
});

// POST /oauth2/revoke (form fields)

export const revocationRequest = z.object({
  token: text('token', 16_384),
  token_type_hint: z.string().optional(),
});

/** The outcome of parsing: the value, or one sentence naming the offending field(s). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseWith<S extends z.ZodType>(schema: S, input: unknown): Parsed<z.infer<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, message: describeIssues(result.error.issues) };
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const messages = issues.map((issue) => {
    const field = issue.path.join('.');
    // Our own messages already start with the field name; zod's generic ones get it prepended.
    return field && !issue.message.startsWith(`${field}:`) ? `${field}: ${issue.message}` : issue.message;
  });
  return [...new Set(messages)].join('; ');
}

/**
 * Parses a body that is a union tagged by `type`: first the tag, with a message listing the accepted
 * values, then the member schema. `untyped`, when given, handles a body without a `type`.
 */
export function parseTagged<M extends Record<string, z.ZodType>, U = never>(
  input: unknown,
  members: M,
  untyped?: z.ZodType<U>,
): Parsed<z.infer<M[keyof M]> | U> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, message: 'body: must be a JSON object' };
  }
  const tag = (input as { type?: unknown }).type;
  if (tag === undefined && untyped) return parseWith(untyped, input);
  const accepted = Object.keys(members);
  if (typeof tag !== 'string' || !Object.hasOwn(members, tag)) {
    return { ok: false, message: `type: must be one of ${accepted.join(', ')}` };
  }
  return parseWith(members[tag] as M[keyof M], input);
}

export function parseIdentityRequest(input: unknown): Parsed<IdentityRequest> {
  return parseTagged(input, identityRequests);
}

export function parseClaimRequest(input: unknown): Parsed<ClaimCommand> {
  const parsed = parseTagged(input, claimRequests, claimUntyped);
  if (!parsed.ok) return parsed;
  const body = parsed.value as Record<string, string | undefined>;
  if (body.type === 'identity_assertion') {
    return { ok: true, value: { method: 'identity_assertion', claimToken: body.claim_token!, assertion: body.assertion! } };
  }
  const loginHint = body.login_hint ?? body.email;
  return { ok: true, value: { method: 'login_hint', claimToken: body.claim_token!, loginHint: loginHint! } };
}

/**
 * The email syntax check for `login_hint`: something@something.tld, no whitespace and no control
 * characters (they would end up in mail headers and logs), after trimming.
 */
export function isEmail(value: string): boolean {
  return /^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u.test(value.trim());
}
