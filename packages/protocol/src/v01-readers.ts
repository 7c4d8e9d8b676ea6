import { z } from 'zod';
import type { RegistrationType } from './dialects.ts';
import { parseWith, type Parsed } from './schemas.ts';
import { v01CredentialTypes, v01RegistrationTypes, type V01ClaimOutcome, type V01CredentialView, type V01RegistrationView } from './v01.ts';
import { defined, expected, instant, jsonObject, maybe, requireTogether, strings, text } from './wire-values.ts';

/**
 * Readers of the v0.1 answers (`/agent/auth`), the inverse of the v0.1 shapers of v01.ts. v0.1 has
 * one projection, and it carries everything its shapers write: these readers lose nothing. Unknown
 * members are ignored; a member of a group (the credential, the claim handle) brings the others.
 */

export interface V01ClaimStartedView {
  registrationId: string;
  attempt: { id: string; expiresAt: number };
}

export interface V01ClaimedView {
  registrationId: string;
  outcome: V01ClaimOutcome;
}

const ourName = Object.fromEntries(Object.entries(v01RegistrationTypes).map(([ours, v01]) => [v01, ours])) as Record<string, RegistrationType>;

const credentialType = z.enum(v01CredentialTypes, { error: expected(v01CredentialTypes.join(' or ')) });

/** The credential members (`credential`, `credential_type`, `credential_expires`, `scopes`); `credential_expires` is null for an API key. */
const credentialMembers = {
  credential: maybe(text),
  credential_type: maybe(credentialType),
  credential_expires: instant.nullable().optional(),
  scopes: maybe(strings),
};

type CredentialWire = { credential?: string; credential_type?: V01CredentialView['type']; credential_expires?: number | null; scopes?: string[] };

function credentialOf(wire: CredentialWire): V01CredentialView | undefined {
  if (wire.credential === undefined) return undefined;
  return { type: wire.credential_type!, value: wire.credential, expiresAt: wire.credential_expires!, scopes: wire.scopes! };
}

const credentialRule = { credential: ['credential_type', 'credential_expires', 'scopes'] };

const registrationSchema = z
  .object({
    registration_id: text,
    registration_type: z.enum(v01RegistrationTypes, { error: expected(Object.values(v01RegistrationTypes).join(', ')) }),
    ...credentialMembers,
    claim_token: maybe(text),
    claim_url: maybe(text),
    claim_token_expires: maybe(instant),
    post_claim_scopes: maybe(strings),
  })
  .transform((wire, ctx): V01RegistrationView => {
    if (!requireTogether(ctx, wire, { ...credentialRule, claim_token: ['claim_url', 'claim_token_expires', 'post_claim_scopes'] })) return z.NEVER;
    return defined({
      id: wire.registration_id,
      type: ourName[wire.registration_type] as V01RegistrationView['type'],
      credential: credentialOf(wire),
      claim:
        wire.claim_token === undefined
          ? undefined
          : { url: wire.claim_url!, token: wire.claim_token, expiresAt: wire.claim_token_expires!, postClaimScopes: wire.post_claim_scopes! },
    });
  });

/** `POST /agent/auth`: a credential, a claim handle, or both; registration types in their v0.1 names (`agent-provider`…) come back as ours. */
export function readV01RegistrationEnvelope(body: unknown): Parsed<V01RegistrationView> {
  const object = jsonObject(body);
  return object.ok ? parseWith(registrationSchema, object.value) : object;
}

const claimStartedSchema = z
  .object({
    registration_id: text,
    claim_attempt_id: text,
    status: z.literal('initiated', { error: expected('"initiated"') }),
    expires_at: instant,
  })
  .transform((wire): V01ClaimStartedView => ({ registrationId: wire.registration_id, attempt: { id: wire.claim_attempt_id, expiresAt: wire.expires_at } }));

/** `POST /agent/auth/claim`: the attempt whose code the service emailed. */
export function readV01ClaimStartedEnvelope(body: unknown): Parsed<V01ClaimStartedView> {
  const object = jsonObject(body);
  return object.ok ? parseWith(claimStartedSchema, object.value) : object;
}

const claimedSchema = z
  .object({ registration_id: text, status: z.literal('claimed', { error: expected('"claimed"') }), ...credentialMembers })
  .transform((wire, ctx): V01ClaimedView => {
    if (!requireTogether(ctx, wire, credentialRule)) return z.NEVER;
    const credential = credentialOf(wire);
    if (credential) return { registrationId: wire.registration_id, outcome: { credential } };
    // Without a credential the API key the agent holds was upgraded in place: only that kind is.
    if (wire.credential_type !== 'api_key' || wire.scopes === undefined) {
      const member = wire.credential_type !== 'api_key' ? 'credential' : 'scopes';
      ctx.issues.push({ code: 'custom', message: 'is required (only an API key is upgraded in place, with its new scopes)', path: [member], input: undefined });
      return z.NEVER;
    }
    return { registrationId: wire.registration_id, outcome: { upgraded: { type: 'api_key', scopes: wire.scopes } } };
  });

/** `POST /agent/auth/claim/complete`: a fresh credential, or the API key upgraded in place (`credential_type` and `scopes` without `credential`). */
export function readV01ClaimedEnvelope(body: unknown): Parsed<V01ClaimedView> {
  const object = jsonObject(body);
  return object.ok ? parseWith(claimedSchema, object.value) : object;
}
