import { isEmail, paths, protocolError, v01RegistrationEnvelope, type V01ClaimHandle, type V01CredentialView, type V01Registration } from '@authmd/protocol';
import { registrations, type RegistrationRow } from '../schema.ts';
import { registrationForIdJag, type V01StepUp } from './agent-verified.ts';
import { createAttempt } from './attempts.ts';
import type { EngineContext } from './context.ts';
import { checkRegistrationRate } from './rate-limits.ts';
import * as lifecycle from './registration-lifecycle.ts';
import { newRegistration } from './registrations.ts';
import { normalizeEmail } from './users.ts';
import { credentialTypeFor, issueCredential } from './v01-credentials.ts';
import { chargeClaimEmail, sendClaimEmail } from './v01-mail.ts';

/** What `POST /agent/auth` answers: a credential, a claim handle, or both. */
export interface V01Registered {
  id: string;
  type: RegistrationRow['type'];
  credential?: V01CredentialView;
  claim?: V01ClaimHandle;
}

/**
 * `POST /agent/auth` (v0.1): the same registrations as `/agent/identity`, with credentials handed out
 * directly. Anonymous: an API key with the pre-claim scopes at once, and a claim token. ID-JAG: a
 * credential for a clean match (a first link to an existing account is refused with
 * `interaction_required`, as on the other dialects). Verified email: nothing usable until the person
 * reads the emailed code to the agent.
 */
export async function registerV01(ctx: EngineContext, command: V01Registration, clientIp: string | undefined): Promise<V01Registered> {
  switch (command.method) {
    case 'anonymous':
      return registerAnonymousWithKey(ctx, command.credential, clientIp);
    case 'id_jag':
      return registerIdJagWithCredential(ctx, command.assertion, command.credential, clientIp);
    case 'verified_email':
      return registerVerifiedEmail(ctx, command.email, command.credential, clientIp);
  }
}

async function registerAnonymousWithKey(ctx: EngineContext, requested: string | undefined, clientIp: string | undefined): Promise<V01Registered> {
  if (!ctx.config.methods.anonymous) throw protocolError('anonymous_not_enabled', 'Anonymous registration is switched off on this service.');
  credentialTypeFor(requested, ['api_key'], 'api_key');
  const { row, claimToken } = newRegistration(ctx, 'anonymous', clientIp, null);
  row.credential_type = 'api_key';
  const credential = await ctx.store.transaction(async (tx) => {
    await checkRegistrationRate(ctx, tx, 'anonymous', clientIp);
    await lifecycle.create(ctx, tx, row, { dialect: 'v0.1' });
    return issueCredential(ctx, tx, row, 'api_key');
  });
  return { id: row.id, type: 'anonymous', credential, claim: claimHandle(ctx, row, claimToken) };
}

async function registerIdJagWithCredential(ctx: EngineContext, assertion: string, requested: string | undefined, clientIp: string | undefined): Promise<V01Registered> {
  const type = credentialTypeFor(requested, ['access_token', 'api_key'], 'access_token');
  // A first link to an existing account: its owner is emailed a code, and the 401 carries the claim handle.
  const stepUpBy = { kind: 'email' as const, credential: type, handle: (pending: V01StepUp) => v01RegistrationEnvelope({ id: pending.id, type: 'identity_assertion', claim: claimHandleOf(ctx, pending.claimToken, pending.claimExpiresAt) }) };
  // No identity assertion is signed: v0.1 hands out the credential itself.
  const { registration } = await registrationForIdJag(ctx, { assertion, clientIp, stepUpBy });
  const credential = await ctx.store.transaction(async (tx) => {
    const current = await tx.get(registrations, registration.id);
    if (!current) throw protocolError('invalid_grant', 'The registration was removed meanwhile; register again.');
    return issueCredential(ctx, tx, current, type);
  });
  return { id: registration.id, type: 'identity_assertion', credential };
}

async function registerVerifiedEmail(ctx: EngineContext, email: string, requested: string | undefined, clientIp: string | undefined): Promise<V01Registered> {
  if (!ctx.config.methods.serviceAuth) throw protocolError('service_auth_not_enabled', 'Registration by email is switched off on this service.');
  const type = credentialTypeFor(requested, ['access_token', 'api_key'], 'access_token');
  if (!isEmail(email)) throw protocolError('invalid_request', 'assertion: must be the user\'s email address when assertion_type is verified_email.');
  const address = normalizeEmail(email);
  const { row, claimToken } = newRegistration(ctx, 'service_auth', clientIp, address);
  row.credential_type = type;
  const attempt = await ctx.store.transaction(async (tx) => {
    await checkRegistrationRate(ctx, tx, 'service_auth', clientIp);
    await chargeClaimEmail(ctx, tx, address, clientIp);
    await lifecycle.create(ctx, tx, row, { dialect: 'v0.1' });
    return createAttempt(ctx, tx, row, address, { emailCode: true });
  });
  await sendClaimEmail(ctx, { to: address, code: attempt.emailCode!, attemptToken: attempt.attemptToken, registration: row });
  return { id: row.id, type: 'service_auth', claim: claimHandle(ctx, row, claimToken) };
}

function claimHandle(ctx: EngineContext, row: RegistrationRow, claimToken: string): V01ClaimHandle {
  return claimHandleOf(ctx, claimToken, row.claim_expires_at!);
}

function claimHandleOf(ctx: EngineContext, claimToken: string, expiresAt: number): V01ClaimHandle {
  return { url: ctx.config.issuer + paths.v01.claim, token: claimToken, expiresAt, postClaimScopes: ctx.config.scopes.postClaim };
}
