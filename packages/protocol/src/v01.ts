import { z } from 'zod';
import { parseTagged, parseWith, requiredText as text, type Parsed } from './schemas.ts';
import { iso } from './time.ts';
import { tokenTypes } from './urns.ts';

/**
 * The v0.1 dialect (`/agent/auth`, protocol-reference §7): request bodies and response shapes.
 * Credentials come back directly (`credential`, `credential_type`), times are ISO 8601, and
 * registration types carry their v0.1 names.
 */

export const v01CredentialTypes = ['api_key', 'access_token'] as const;
export type V01CredentialType = (typeof v01CredentialTypes)[number];

/** v0.1's `assertion_type` for an email the agent says its user owns. */
export const VERIFIED_EMAIL = 'verified_email';

/** The v0.1 names of registration types, on v0.1 paths only. */
export const v01RegistrationTypes = {
  anonymous: 'anonymous',
  identity_assertion: 'agent-provider',
  service_auth: 'email-verification',
} as const;

const credentialType = z
  .string({ error: 'requested_credential_type: must be a string' })
  .optional();

const anonymous = z.object({ type: z.literal('anonymous'), requested_credential_type: credentialType });

const identityAssertion = z.object({
  type: z.literal('identity_assertion'),
  assertion_type: z.enum([tokenTypes.idJag, VERIFIED_EMAIL], { error: `assertion_type: must be ${tokenTypes.idJag} or ${VERIFIED_EMAIL}` }),
  assertion: text('assertion', 16_384),
  requested_credential_type: credentialType,
});

export type V01Registration =
  | { method: 'anonymous'; credential: string | undefined }
  | { method: 'id_jag'; assertion: string; credential: string | undefined }
  | { method: 'verified_email'; email: string; credential: string | undefined };

/** `POST /agent/auth`. The requested credential type is checked by the service (it knows what it issues). */
export function parseV01Registration(input: unknown): Parsed<V01Registration> {
  const parsed = parseTagged(input, { anonymous, identity_assertion: identityAssertion });
  if (!parsed.ok) return parsed;
  const body = parsed.value;
  if (body.type === 'anonymous') return { ok: true, value: { method: 'anonymous', credential: body.requested_credential_type } };
  if (body.assertion_type === VERIFIED_EMAIL) {
    return { ok: true, value: { method: 'verified_email', email: body.assertion, credential: body.requested_credential_type } };
  }
  return { ok: true, value: { method: 'id_jag', assertion: body.assertion, credential: body.requested_credential_type } };
}

/** `POST /agent/auth/claim` */
export const v01ClaimRequest = z.object({ claim_token: text('claim_token', 256), email: text('email', 320) });

/** `POST /agent/auth/claim/complete` */
export const v01CompleteRequest = z.object({
  claim_token: text('claim_token', 256),
  otp: z
    .string({ error: (issue) => (issue.input === undefined ? 'otp: is required' : 'otp: must be a string') })
    .regex(/^\d{6}$/, 'otp: must be exactly 6 digits'),
});

export function parseV01Claim(input: unknown): Parsed<z.infer<typeof v01ClaimRequest>> {
  return parseWith(v01ClaimRequest, input);
}

export function parseV01Complete(input: unknown): Parsed<z.infer<typeof v01CompleteRequest>> {
  return parseWith(v01CompleteRequest, input);
}

// --- responses -----------------------------------------------------------------------------------

export interface V01CredentialView {
  type: V01CredentialType;
  value: string;
  /** Epoch ms; null for an API key, which does not expire. */
  expiresAt: number | null;
  scopes: string[];
}

export interface V01ClaimHandle {
  url: string;
  token: string;
  expiresAt: number;
  postClaimScopes: string[];
}

type Json = Record<string, unknown>;

function credentialFields(credential: V01CredentialView): Json {
  return {
    credential_type: credential.type,
    credential: credential.value,
    credential_expires: credential.expiresAt === null ? null : iso(credential.expiresAt),
    scopes: credential.scopes,
  };
}

function claimFields(claim: V01ClaimHandle): Json {
  return { claim_url: claim.url, claim_token: claim.token, claim_token_expires: iso(claim.expiresAt), post_claim_scopes: claim.postClaimScopes };
}

export interface V01RegistrationView {
  id: string;
  type: keyof typeof v01RegistrationTypes;
  credential?: V01CredentialView;
  claim?: V01ClaimHandle;
}

/** How a v0.1 claim ends: a fresh credential, or an API key upgraded in place (its new scopes only). */
export type V01ClaimOutcome = { credential: V01CredentialView } | { upgraded: { type: 'api_key'; scopes: string[] } };

/** The answer of `POST /agent/auth`: a credential, a claim handle, or both (anonymous). */
export function v01RegistrationEnvelope(view: V01RegistrationView): Json {
  return {
    registration_id: view.id,
    registration_type: v01RegistrationTypes[view.type],
    ...(view.credential ? credentialFields(view.credential) : {}),
    ...(view.claim ? claimFields(view.claim) : {}),
  };
}

/** The answer of `POST /agent/auth/claim`. */
export function v01ClaimStartedEnvelope(registrationId: string, attempt: { id: string; expiresAt: number }): Json {
  return { registration_id: registrationId, claim_attempt_id: attempt.id, status: 'initiated', expires_at: iso(attempt.expiresAt) };
}

/**
 * The answer of `POST /agent/auth/claim/complete`: with a fresh credential, or, for an API key
 * upgraded in place, its type and new scopes only (the agent keeps using the key it has).
 */
export function v01ClaimedEnvelope(registrationId: string, outcome: V01ClaimOutcome): Json {
  if ('credential' in outcome) return { registration_id: registrationId, status: 'claimed', ...credentialFields(outcome.credential) };
  return { registration_id: registrationId, status: 'claimed', credential_type: outcome.upgraded.type, scopes: outcome.upgraded.scopes };
}
