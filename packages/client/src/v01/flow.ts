import {
  iso,
  readV01ClaimedEnvelope,
  readV01ClaimStartedEnvelope,
  readV01RegistrationEnvelope,
  tokenTypes,
  VERIFIED_EMAIL,
  type V01ClaimHandle,
  type V01RegistrationView,
} from '@authmd/protocol';
import { claimRequiredResult } from '../claim-required.ts';
import type { ServiceInfo } from '../discovery.ts';
import { AuthmdClientError, fromServiceError, outcomeUnknown } from '../errors.ts';
import { jsonPost, requestJson, requireJson, type HttpOptions, type JsonAnswer } from '../http.ts';
import type { PendingClaim } from '../pending-claim.ts';
import type { CredentialStore, IssuerRecord, StoredCredential } from '../store/contract.ts';
import type { AuthenticateRequest, AuthResult, ClaimPrompt, ClaimRequiredResult, Handoff, IdJagSource, ReadyResult } from '../types.ts';
import { sendIdJagOnce } from '../id-jag-once.ts';
import { DEFAULT_ATTEMPT_MS } from '../lifetimes.ts';
import { refusalOf, valueOf } from '../read-answer.ts';
import { readyFromCredential, scopeOf, storedCredential, usable } from './credential.ts';
import { completionError, NEEDS_NEW_CODE } from './errors.ts';

export interface V01Context {
  http: HttpOptions;
  store: CredentialStore;
  clock: () => number;
  /** Shared with the client: one claim in progress per issuer, whatever the dialect. */
  pending: Map<string, PendingClaim>;
  idJag: IdJagSource | undefined;
  prompt: ClaimPrompt | undefined;
  email: string | undefined;
}

const WHY_NEW_CODE: Record<string, string> = {
  otp_expired: 'The code in the email had expired',
  otp_not_generated: 'That claim has no code any more (it was replaced)',
  too_many_attempts: 'Too many wrong codes were tried',
};

/**
 * The v0.1 dialect (`/agent/auth`, protocol-reference §7), for a service that offers nothing newer:
 * the credential (an API key, or an access token) comes back directly and is used as a Bearer token;
 * a person claims by reading back the 6-digit code the service emailed them.
 */
export class V01Flow {
  constructor(private readonly c: V01Context) {}

  /** As `AgentClient.authenticate`: the stored credential while it lives, else a claim in progress, else a registration. */
  async authenticate(service: ServiceInfo, request: AuthenticateRequest): Promise<AuthResult> {
    const { issuer } = service;
    const now = this.c.clock();
    const email = request.email ?? this.c.email;
    const record = await this.c.store.get(issuer);
    const pending = this.c.pending.get(issuer);

    // An email for an anonymous registration whose claim token we still hold: claim it (its API key keeps working).
    if (email && !request.idJag && pending && record?.registration_type === 'anonymous' && !record.claimed) {
      return this.startClaim(service, pending, email);
    }
    // An email for an anonymous registration whose claim token was lost with a restart: register by email.
    const unclaimable = request.email !== undefined && !request.idJag && !pending && record?.registration_type === 'anonymous' && !record.claimed && service.identityTypes.includes('service_auth');
    if (!request.forceReregister && record && !unclaimable && usable(record.credential, now)) return readyFromCredential(record, record.credential, now);
    // A claim this client is already waiting for: the same hand-off again, or a new code once it expired.
    if (!request.forceReregister && !request.idJag && pending?.handoff && record?.registration_id === pending.registrationId && !record.credential) {
      if (Date.parse(pending.handoff.expiresAt) > now) return claimRequiredResult(pending.handoff);
      if (pending.loginHint) return this.restart(service, pending, pending.loginHint);
    }
    return this.register(service, record, { email, idJag: request.idJag, force: request.forceReregister === true });
  }

  /** Completes the claim with the code the person read from the email. */
  async completeClaim(service: ServiceInfo, pending: PendingClaim, userCode: string): Promise<ReadyResult> {
    const otp = userCode.replace(/[\s-]/g, '');
    const send = () => requestJson(this.c.http, `${pending.claimUrl}/complete`, jsonPost({ claim_token: pending.claimToken, otp }), 'Completing the claim', { spends: true });
    let answer: JsonAnswer;
    try {
      answer = await send();
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      // v0.1 cannot be asked how a claim stands: the code goes once more, and `previously_claimed` says it was taken.
      answer = await send();
    }
    if (answer.status === 200) return this.claimed(service, pending, answer);
    const { body } = answer;
    const code = refusalOf(body)?.error ?? '';
    if (code === 'previously_claimed') return this.alreadyClaimed(service, pending, answer.status, body);
    if (NEEDS_NEW_CODE.has(code) && pending.loginHint) {
      const next = await this.restart(service, pending, pending.loginHint);
      // Asked again with a fresh ID-JAG, a first link confirmed meanwhile is ready at once.
      if (next.status === 'ready') return next;
      throw new AuthmdClientError(
        'code_resent',
        `${WHY_NEW_CODE[code]}: ${service.issuer} emailed a new code to ${pending.loginHint}. Give the code from that new email.`,
        { status: answer.status, body },
      );
    }
    if (['claim_expired', 'invalid_claim_token', 'claim_denied'].includes(code)) this.c.pending.delete(service.issuer);
    throw completionError(answer.status, body, pending.handoff?.emailedTo);
  }

  private async register(service: ServiceInfo, record: IssuerRecord | undefined, request: { email?: string; idJag?: string; force: boolean }): Promise<AuthResult> {
    const { issuer } = service;
    const offered = (type: string) => service.identityTypes.includes(type);
    const idJag = request.idJag ?? (offered('identity_assertion') ? await this.c.idJag?.({ issuer, resource: service.resource }) : undefined);
    if (idJag) return this.registerWithIdJag(service, idJag);
    if (request.email && offered('service_auth')) return this.registerByEmail(service, request.email);
    const userBound = record !== undefined && (record.claimed || (record.registration_type !== 'anonymous' && record.credential !== undefined));
    if (userBound && !request.force) {
      const what = record.credential ? 'its credential expired or was refused' : 'it holds no credential';
      throw new AuthmdClientError(
        'reauthentication_required',
        `The stored registration at ${issuer} belongs to a user and ${what}; v0.1 has no refresh, and this client will not replace it with an anonymous one. Authenticate again with the user's email (they get a new code) or an ID-JAG (or force a new registration).`,
        { status: 401 },
      );
    }
    if (!offered('anonymous')) {
      throw new AuthmdClientError('no_applicable_method', `${issuer} offers ${service.identityTypes.join(', ') || 'nothing this client can use'}; give an email or an ID-JAG source to register there.`);
    }
    return this.registerAnonymously(service);
  }

  private async registerAnonymously(service: ServiceInfo): Promise<ReadyResult> {
    const what = 'Registering anonymously';
    const answer = await requireJson(this.c.http, registerUri(service), jsonPost({ type: 'anonymous', requested_credential_type: 'api_key' }), what);
    const registration = valueOf(readV01RegistrationEnvelope(answer.body), what, answer);
    if (!registration.credential) throw new AuthmdClientError('invalid_response', 'The anonymous registration came without a credential.', { status: answer.status, body: answer.body });
    const { claim } = registration;
    if (claim) this.c.pending.set(service.issuer, { ...claimHandle(claim), registrationId: registration.id, registrationType: 'anonymous', loginHint: undefined, handoff: undefined });
    else this.c.pending.delete(service.issuer);
    return this.saveReady(service, { registration_id: registration.id, registration_type: 'anonymous', claimed: false, dialect: 'v0.1', credential: storedCredential(registration.credential) });
  }

  private async registerWithIdJag(service: ServiceInfo, idJag: string): Promise<ReadyResult | ClaimRequiredResult> {
    const { issuer } = service;
    const send = (assertion: string) =>
      requestJson(
        this.c.http,
        registerUri(service),
        jsonPost({ type: 'identity_assertion', assertion_type: tokenTypes.idJag, assertion, requested_credential_type: 'access_token' }),
        'Registering with an ID-JAG',
        { spends: true },
      );
    const answer = await sendIdJagOnce(send, idJag, async () => this.c.idJag?.({ issuer, resource: service.resource }));
    const { body } = answer;
    if (answer.status === 401 && refusalOf(body)?.error === 'interaction_required') {
      // A first link to an existing account: its owner was emailed a code, read back like any v0.1 claim.
      const stepUp = readV01RegistrationEnvelope(body);
      const registration: V01RegistrationView | undefined = stepUp.ok ? stepUp.value : undefined;
      // The service emails the account the ID-JAG's email matched: that address is where the person looks.
      const email = emailOf(idJag);
      if (!registration?.claim || !email) {
        const why = stepUp.ok ? '' : ` (its answer does not read: ${stepUp.message})`;
        throw new AuthmdClientError(
          'interaction_required',
          `${issuer} first wants the person to confirm that this provider account may be linked to their existing account there, and sent no claim token to do it with${why}. Authenticate with the user's email instead (they get a code by email).`,
          { status: 401, body },
        );
      }
      await this.c.store.update(issuer, () => ({ registration_id: registration.id, registration_type: 'identity_assertion', claimed: false, dialect: 'v0.1' }));
      const pending: PendingClaim = { ...claimHandle(registration.claim), registrationId: registration.id, registrationType: 'identity_assertion', loginHint: undefined, handoff: undefined };
      return this.handOff(service, pending, email, new Date(this.c.clock() + DEFAULT_ATTEMPT_MS).toISOString());
    }
    const what = 'Registering with an ID-JAG';
    if (answer.status !== 200) throw fromServiceError(answer.status, body, what);
    const registration = valueOf(readV01RegistrationEnvelope(body), what, answer);
    if (!registration.credential) throw new AuthmdClientError('invalid_response', 'The ID-JAG registration came without a credential.', { status: answer.status, body });
    this.c.pending.delete(issuer);
    return this.saveReady(service, { registration_id: registration.id, registration_type: 'identity_assertion', claimed: true, dialect: 'v0.1', credential: storedCredential(registration.credential) });
  }

  /** `verified_email`: the service emails the person a code at once. Asks for an API key, since v0.1 has no refresh. */
  private async registerByEmail(service: ServiceInfo, email: string): Promise<ClaimRequiredResult> {
    const what = 'Registering by email';
    const answer = await requireJson(
      this.c.http,
      registerUri(service),
      jsonPost({ type: 'identity_assertion', assertion_type: VERIFIED_EMAIL, assertion: email, requested_credential_type: 'api_key' }),
      what,
    );
    const registration = valueOf(readV01RegistrationEnvelope(answer.body), what, answer);
    const { claim } = registration;
    if (!claim) throw new AuthmdClientError('unexpected_response', 'The service accepted the email but sent no claim token.', { status: answer.status, body: answer.body });
    await this.c.store.update(service.issuer, () => ({ registration_id: registration.id, registration_type: 'service_auth', claimed: false, dialect: 'v0.1' }));
    const codeEnds = this.c.clock() + DEFAULT_ATTEMPT_MS;
    const pending: PendingClaim = { ...claimHandle(claim), registrationId: registration.id, registrationType: 'service_auth', loginHint: email, handoff: undefined };
    return this.handOff(service, pending, email, iso(Math.min(codeEnds, claim.expiresAt)));
  }

  /** Claims an anonymous registration for the person with this email: the service emails them a code. */
  private async startClaim(service: ServiceInfo, pending: PendingClaim, email: string): Promise<ClaimRequiredResult> {
    const { issuer } = service;
    const what = 'Starting the claim';
    const answer = await requestJson(this.c.http, pending.claimUrl, jsonPost({ claim_token: pending.claimToken, email }), what);
    const { body } = answer;
    if (answer.status === 200) {
      const started = valueOf(readV01ClaimStartedEnvelope(body), what, answer);
      return this.handOff(service, pending, email, iso(started.attempt.expiresAt));
    }
    const code = refusalOf(body)?.error;
    if (code === 'claimed_or_in_flight') {
      this.c.pending.delete(issuer);
      await this.c.store.update(issuer, (record) => record && record.registration_id === pending.registrationId ? { ...record, claimed: true } : record);
      throw new AuthmdClientError(
        'claimed_or_in_flight',
        `The registration at ${issuer} is already claimed by a person, so its API key already has their scopes. Nothing to do: authenticate without an email to use it.`,
        { status: answer.status, body },
      );
    }
    if (code === 'claim_expired' || code === 'invalid_claim_token') {
      this.c.pending.delete(issuer);
      // Past its claim window the service also revoked the API key: the next authenticate registers anew.
      if (code === 'claim_expired') await this.c.store.update(issuer, (record) => record && { ...record, credential: undefined });
      const error = fromServiceError(answer.status, body, 'Starting the claim');
      throw new AuthmdClientError(error.code, `${error.message} Authenticate again to register anew, then claim that registration.`, error.details);
    }
    throw fromServiceError(answer.status, body, 'Starting the claim');
  }

  /**
   * A new code by email: a new claim attempt for an anonymous registration, a new registration for
   * an email one, the same ID-JAG registration asked again (with a fresh ID-JAG) for a first link.
   */
  private async restart(service: ServiceInfo, pending: PendingClaim, email: string): Promise<AuthResult> {
    if (pending.registrationType === 'anonymous') return this.startClaim(service, pending, email);
    if (pending.registrationType !== 'identity_assertion') return this.registerByEmail(service, email);
    const fresh = await this.c.idJag?.({ issuer: service.issuer, resource: service.resource });
    if (!fresh) throw new AuthmdClientError('reauthentication_required', `A new code for ${service.issuer} needs a fresh ID-JAG, and this client has no ID-JAG source: authenticate again with one.`);
    return this.registerWithIdJag(service, fresh);
  }

  private async handOff(service: ServiceInfo, pending: PendingClaim, email: string, expiresAt: string): Promise<ClaimRequiredResult> {
    const handoff: Handoff = {
      issuer: service.issuer,
      registrationId: pending.registrationId,
      verificationUri: `mailto:${email}`,
      expiresAt,
      readBack: true,
      emailedTo: email,
    };
    this.c.pending.set(service.issuer, { ...pending, loginHint: email, handoff });
    await this.c.prompt?.show(handoff);
    return claimRequiredResult(handoff);
  }

  /** The claim is complete: a fresh credential (email registration), or the same API key with the person's scopes. */
  private async claimed(service: ServiceInfo, pending: PendingClaim, answer: JsonAnswer): Promise<ReadyResult> {
    this.c.pending.delete(service.issuer);
    const { outcome } = valueOf(readV01ClaimedEnvelope(answer.body), 'Completing the claim', answer);
    const fresh = 'credential' in outcome ? storedCredential(outcome.credential) : undefined;
    const record = await this.c.store.update(service.issuer, (current) => {
      const base: IssuerRecord =
        current?.registration_id === pending.registrationId ? current : { registration_id: pending.registrationId, registration_type: pending.registrationType, claimed: false };
      // Upgraded in place: the key the agent holds, with the person's scopes (the old list is not kept).
      const credential = fresh ?? (base.credential && 'upgraded' in outcome && { ...withoutScope(base.credential), ...scopeOf(outcome.upgraded.scopes) });
      return { ...base, claimed: true, dialect: 'v0.1', ...(credential ? { credential } : {}) };
    });
    if (!record?.credential) throw new AuthmdClientError('invalid_response', 'The claim completed, but the service handed out no credential and none is stored.');
    return readyFromCredential(record, record.credential, this.c.clock());
  }

  /**
   * The claim was completed already (by an earlier completion whose answer was lost, say). An
   * anonymous registration's API key was upgraded in place, so it is ready; an email registration's
   * credential was handed out in that answer, once, and is gone.
   */
  private async alreadyClaimed(service: ServiceInfo, pending: PendingClaim, status: number, body: unknown): Promise<ReadyResult> {
    this.c.pending.delete(service.issuer);
    const record = await this.c.store.get(service.issuer);
    if (pending.registrationType === 'anonymous' && record?.registration_id === pending.registrationId && record.credential) {
      // Its scopes are now the person's, whichever they are: the old list is not kept.
      const { scope: _old, ...credential } = record.credential;
      await this.c.store.update(service.issuer, (current) => current && { ...current, claimed: true, credential });
      return readyFromCredential({ ...record, claimed: true }, credential, this.c.clock());
    }
    throw new AuthmdClientError(
      'claim_answer_lost',
      `The claim at ${service.issuer} was completed already, and its credential went out in an answer that did not arrive (v0.1 hands it out once). Authenticate again with the user's email to register anew; they get a new code.`,
      { status, body },
    );
  }

  private async saveReady(service: ServiceInfo, record: IssuerRecord & { credential: StoredCredential }): Promise<ReadyResult> {
    await this.c.store.update(service.issuer, () => record);
    return readyFromCredential(record, record.credential, this.c.clock());
  }
}

/** The email an ID-JAG names (read, not verified: only to tell the person which inbox to look in). */
function emailOf(idJag: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(idJag.split('.')[1] ?? '', 'base64url').toString('utf8')) as { email?: unknown };
    return typeof payload.email === 'string' ? payload.email : undefined;
  } catch {
    return undefined;
  }
}

function registerUri(service: ServiceInfo): string {
  if (!service.endpoints.v01Register) throw new AuthmdClientError('agent_auth_unsupported', `${service.issuer} advertises no v0.1 register_uri.`);
  return service.endpoints.v01Register;
}

function claimHandle(claim: V01ClaimHandle): Pick<PendingClaim, 'claimToken' | 'claimUrl'> {
  return { claimToken: claim.token, claimUrl: claim.url };
}

function withoutScope(credential: StoredCredential): StoredCredential {
  const { scope: _old, ...rest } = credential;
  return rest;
}
