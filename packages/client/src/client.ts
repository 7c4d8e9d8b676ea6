import {
  bearerChallenge,
  grantTypes,
  iso,
  readClaimedEnvelope,
  readClaimStartedEnvelope,
  readRefreshEnvelope,
  readRegistrationEnvelope,
  readTokenResponse,
  tokenTypes,
  withoutTrailingSlash,
  type AccessTokenRead,
  type AttemptRead,
  type RegistrationRead,
} from '@authmd/protocol';
import { Discovery, type ServiceInfo } from './discovery.ts';
import { sendIdJagOnce } from './id-jag-once.ts';
import { EXPIRY_SLACK_MS } from './lifetimes.ts';
import { AuthmdClientError, fromServiceError, networkError, outcomeUnknown } from './errors.ts';
import { formPost, jsonPost, requestJson, requireJson, type FetchLike, type HttpOptions, type JsonAnswer } from './http.ts';
import type { CredentialStore, IssuerRecord, RegistrationType, StoredIdentity } from './store/contract.ts';
import { MemoryCredentialStore } from './store/memory-store.ts';
import type { AuthenticateRequest, AuthResult, ClaimPrompt, ClaimRequiredResult, Handoff, IdJagSource, ReadyResult } from './types.ts';
import { claimRequiredResult } from './claim-required.ts';
import type { PendingClaim } from './pending-claim.ts';
import { readEnvelope, refusalOf, valueOf } from './read-answer.ts';
import { storedAccessToken, storedIdentity } from './stored.ts';
import { V01Flow } from './v01/flow.ts';

export { instructionsFor } from './claim-required.ts';

export interface AgentClientOptions {
  /** Where credentials live. Default: in memory (the CLI uses the file store). */
  store?: CredentialStore;
  /** The user's email, for service_auth registration and for claiming anonymous registrations. */
  email?: string;
  /** Where ID-JAGs come from, if the agent's platform can mint them. */
  idJag?: IdJagSource;
  /** Told about every hand-off (a new link to open, a code to type). */
  prompt?: ClaimPrompt;
  fetch?: FetchLike;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
}

/** Reused access tokens must live at least this much longer (the official client's slack). */

/**
 * The agent's side of auth.md: discover a service, register with the lightest method the agent can
 * use (an ID-JAG, then an email, then nothing), run whichever claim ceremony the service speaks,
 * exchange, refresh, and make authenticated requests.
 */
export class AgentClient {
  private readonly store: CredentialStore;
  private readonly http: HttpOptions;
  private readonly clock: () => number;
  private readonly discovery: Discovery;
  private readonly pending = new Map<string, PendingClaim>();
  /** Code checks in flight, by pending claim: a poll told that the tokens are gone waits for the check they went to. */
  private readonly completing = new Map<PendingClaim, Promise<ReadyResult>>();
  /** Services met so far by resource or issuer (origin and path, parsed once), to find the one a URL belongs to. */
  private readonly known = new Map<string, { origin: string; path: string; issuer: string }>();
  private readonly lanes = new Map<string, Promise<unknown>>();
  private readonly v01: V01Flow;

  constructor(private readonly options: AgentClientOptions = {}) {
    this.store = options.store ?? new MemoryCredentialStore();
    this.clock = options.clock ?? Date.now;
    const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    this.http = { fetch: options.fetch ?? ((input, init) => fetch(input, init)), sleep, timeoutMs: options.timeoutMs ?? 10_000 };
    this.discovery = new Discovery(this.http, this.clock);
    this.v01 = new V01Flow({ http: this.http, store: this.store, clock: this.clock, pending: this.pending, idJag: options.idJag, prompt: options.prompt, email: options.email });
  }

  /** The service behind an issuer, base URL or API URL. */
  async discover(target: string): Promise<ServiceInfo> {
    const service = await this.discovery.fromUrl(this.issuerFor(target) ?? target);
    this.remember(service);
    return service;
  }

  /**
   * Credentials for a service: a live access token reused, else the identity assertion exchanged,
   * else the refresh token rotated, else a new registration. `claim_required` means a human must act.
   */
  async authenticate(request: AuthenticateRequest): Promise<AuthResult> {
    const service = await this.discover(request.issuer ?? request.url ?? '');
    // One credential operation per issuer at a time: parallel requests would otherwise register
    // twice, or present one refresh token twice, which the service rightly takes for theft.
    return this.inLane(service.issuer, () => this.authenticateAt(service, request));
  }

  private async authenticateAt(service: ServiceInfo, request: AuthenticateRequest): Promise<AuthResult> {
    if (service.dialect === 'v0.1') return this.v01.authenticate(service, request);
    const issuer = service.issuer;
    const resource = request.resource ?? service.resource;
    const email = request.email ?? this.options.email;
    const record = await this.store.get(issuer);
    const pending = this.pending.get(issuer);

    // An email for an anonymous registration whose claim token we still hold: claim it.
    if (email && !request.idJag && pending && record?.registration_type === 'anonymous' && !record.claimed) {
      return this.startClaim(service, pending, email);
    }
    // An email given for an anonymous registration this process can no longer claim (its claim token
    // was lost with a restart): the user asked for their own access, so register by email.
    const byEmailOffered = service.identityTypes.length === 0 || service.identityTypes.includes('service_auth');
    const unclaimable = request.email !== undefined && byEmailOffered && !request.idJag && !pending && record?.registration_type === 'anonymous' && !record.claimed;
    let lostRefresh: AuthmdClientError | undefined;
    if (!request.forceReregister && record && !unclaimable) {
      const reused = await this.reuse(service, record, resource);
      if (reused instanceof AuthmdClientError) lostRefresh = reused;
      else if (reused) return reused;
    }
    // A claim this client is already waiting for: the same hand-off again (a new link once it expired).
    if (!request.forceReregister && !request.idJag && pending?.handoff && record?.registration_id === pending.registrationId && !record.identity) {
      if (Date.parse(pending.handoff.expiresAt) > this.clock()) return claimRequiredResult(pending.handoff);
      if (pending.loginHint) return this.startClaim(service, pending, pending.loginHint);
    }
    return this.register(service, record, { email, idJag: request.idJag, resource, force: request.forceReregister === true, lostRefresh });
  }

  /** Read-back: the code the page showed the human after Authorize (v0.1: the code in the email). */
  async completeClaim(issuerOrUrl: string, userCode: string, options: { resource?: string } = {}): Promise<ReadyResult> {
    const service = await this.discover(issuerOrUrl);
    const pending = this.pendingClaim(service.issuer);
    if (service.dialect === 'v0.1') return this.v01.completeClaim(service, pending, userCode);
    const completion = this.completeWithCode(service, pending, userCode, options.resource ?? service.resource);
    this.completing.set(pending, completion);
    try {
      return await completion;
    } finally {
      if (this.completing.get(pending) === completion) this.completing.delete(pending);
    }
  }

  private async completeWithCode(service: ServiceInfo, pending: PendingClaim, userCode: string, resource: string | undefined): Promise<ReadyResult> {
    let answer: JsonAnswer;
    try {
      // Spends a try of the attempt, and completes it once: never sent again without an answer.
      answer = await requestJson(this.http, `${pending.claimUrl}/complete`, jsonPost({ claim_token: pending.claimToken, user_code: userCode.trim() }), 'Completing the claim', { spends: true });
    } catch (error) {
      if (!outcomeUnknown(error)) throw error;
      return this.afterLostCompletion(service, pending, error, resource);
    }
    if (answer.status !== 200) throw fromServiceError(answer.status, answer.body, 'Completing the claim');
    const claimed = readEnvelope(readClaimedEnvelope, answer, service, 'Completing the claim');
    const identity = storedIdentity(claimed.identity);
    this.pending.delete(service.issuer);
    await this.save(service.issuer, { registration_id: claimed.registration.id, registration_type: pending.registrationType, claimed: true, identity });
    return this.exchange(service, identity, resource);
  }

  /**
   * Type-in: polls the token endpoint with the claim grant while the human types the code on the
   * page. Keeps the interval, adds 5 s on every `slow_down` (for all later polls too), starts a new
   * attempt when one expires (while the registration lives; the prompt is told), and stops on
   * `access_denied`. A poll without an answer is not sent again at once (the tokens may have been in
   * that answer, and an early poll earns `slow_down`): the next one comes after the interval, and
   * three in a row without an answer end the wait.
   */
  async waitForClaim(issuerOrUrl: string, options: { resource?: string; signal?: AbortSignal; onPoll?: (outcome: string) => void } = {}): Promise<ReadyResult> {
    const service = await this.discover(issuerOrUrl);
    let pending = this.pendingClaim(service.issuer);
    if (service.dialect === 'v0.1') {
      throw new AuthmdClientError('invalid_request', `${service.issuer} speaks v0.1, which has no type-in direction: give completeClaim the code the service emailed to the person.`);
    }
    let interval = pending.handoff?.interval ?? 5;
    const resource = options.resource ?? service.resource;
    let unanswered = 0;
    let lost: AuthmdClientError | undefined;
    for (;;) {
      await this.http.sleep(interval * 1000);
      if (options.signal?.aborted) throw new AuthmdClientError('aborted', 'Stopped waiting for the claim.');
      let answer: JsonAnswer;
      try {
        answer = await requestJson(
          this.http,
          endpoint(service, 'token'),
          formPost({ grant_type: grantTypes.claim, claim_token: pending.claimToken, resource }),
          'Polling for the claim',
          { spends: true }, // the tokens are handed over once
        );
      } catch (error) {
        if (!(error instanceof AuthmdClientError) || ++unanswered >= 3) throw error;
        if (outcomeUnknown(error)) lost = error;
        options.onPoll?.('no_answer');
        continue;
      }
      unanswered = 0;
      if (answer.status === 200) return this.claimedByPoll(service, pending, answer, resource);
      const refusal = refusalOf(answer.body);
      const code = refusal?.error ?? 'unexpected_response';
      // A code check of this claim in flight (completeClaim) was handed the tokens: its outcome is this wait's.
      const completion = code === 'invalid_grant' ? this.completing.get(pending) : undefined;
      if (completion) {
        const completed = await completion.catch(() => undefined);
        if (completed) return completed;
      }
      if (code === 'invalid_grant' && lost) {
        this.pending.delete(service.issuer);
        throw new AuthmdClientError(
          'claim_answer_lost',
          `${lost.message} The service handed the claim's tokens over in that lost answer, and hands them over only once. ${AGAIN}`,
          { status: answer.status, body: answer.body },
        );
      }
      options.onPoll?.(code);
      if (code === 'authorization_pending') continue;
      if (code === 'slow_down') {
        const asked = refusal?.extra.interval;
        interval = Math.max(interval + 5, typeof asked === 'number' ? asked : 0);
        continue;
      }
      if (code === 'expired_token' && pending.loginHint) {
        await this.startClaim(service, pending, pending.loginHint); // a new attempt; the prompt shows its link
        pending = this.pendingClaim(service.issuer);
        interval = pending.handoff?.interval ?? interval;
        continue;
      }
      throw fromServiceError(answer.status, answer.body, 'Waiting for the claim');
    }
  }

  /**
   * `fetch` with credentials: the bearer token is added; an unknown service is discovered from its
   * 401; a 401 on a token that worked drops it and re-authenticates once. A human being needed is the
   * error `claim_required`, whose `details.body` holds the hand-off.
   */
  async fetch(url: string, init: RequestInit = {}, options: { resource?: string } = {}): Promise<Response> {
    let issuer = this.issuerFor(url);
    if (!issuer) {
      const first = await this.http.fetch(url, init).catch((error: unknown) => {
        throw networkError(url, error);
      });
      if (first.status !== 401) return first;
      const service = await this.discovery.fromChallenge(url, first.headers.get('www-authenticate'));
      this.remember(service);
      issuer = service.issuer;
    }
    const send = async () => {
      const auth = await this.authenticate({ issuer, resource: options.resource });
      if (auth.status !== 'ready') throw new AuthmdClientError('claim_required', auth.instructions, { body: auth });
      const headers = new Headers(init.headers);
      headers.set('Authorization', `Bearer ${auth.access_token}`);
      return this.http.fetch(url, { ...init, headers });
    };
    const response = await send();
    if (response.status !== 401) return response;
    // A v0.1 credential the service says is invalid (revoked, expired) is dropped too: there is nothing
    // to exchange it from, so the next step registers. Any other 401 keeps it: it may be the only one.
    const invalid = bearerChallenge(response.headers.get('www-authenticate'))?.error === 'invalid_token';
    await this.store.update(issuer, (record) => record && { ...record, access_token: undefined, ...(invalid ? { credential: undefined } : {}) });
    return send();
  }

  /** Revokes what the service issued (RFC 7009) and forgets it. */
  async logout(issuerOrUrl: string): Promise<void> {
    const service = await this.discover(issuerOrUrl);
    const record = await this.store.get(service.issuer);
    const revocation = service.endpoints.revocation;
    if (record && revocation) {
      const tokens = [record.access_token?.value, record.identity?.refresh_token?.value, record.credential?.value].filter((value): value is string => Boolean(value));
      for (const token of tokens) await requestJson(this.http, revocation, formPost({ token }), 'Revoking a token').catch(() => undefined);
    }
    this.pending.delete(service.issuer);
    await this.store.update(service.issuer, () => undefined);
  }

  /** Every stored registration, by issuer. */
  status(): Promise<Record<string, IssuerRecord>> {
    return this.store.list();
  }

  /** The hand-off of a claim this client is waiting for, if any. */
  pendingHandoff(issuer: string): Handoff | undefined {
    return this.pending.get(withoutTrailingSlash(issuer))?.handoff;
  }

  /**
   * Ready credentials from what is stored, or undefined to register. The error is returned (not
   * thrown) when the answer to a refresh was lost: the caller goes on to the next way, and says why.
   */
  private async reuse(service: ServiceInfo, record: IssuerRecord, resource: string | undefined): Promise<ReadyResult | AuthmdClientError | undefined> {
    const now = this.clock();
    const token = record.access_token;
    if (token && Date.parse(token.expires_at) - EXPIRY_SLACK_MS > now && token.resource === resource) {
      return ready(record, { access_token: token.value, expires_in: Math.floor((Date.parse(token.expires_at) - now) / 1000), scope: token.scope });
    }
    if (record.identity && Date.parse(record.identity.expires_at) - EXPIRY_SLACK_MS > now) {
      const exchanged = await this.exchange(service, record.identity, resource).catch((error: unknown) => settle(error, 'invalid_grant'));
      if (exchanged) return exchanged;
    }
    const refresh = record.identity?.refresh_token;
    if (refresh && Date.parse(refresh.expires_at) > now) {
      // Presenting a refresh token spends it, and a second presentation is taken for theft (the whole
      // family is revoked). So it leaves the store before it is sent: whatever happens to the answer,
      // no later call (nor another process on the same store) sends it again.
      const issuer = service.issuer;
      await this.store.update(issuer, (current) => current && withoutRefreshToken(current, refresh.value));
      const keep = () => this.store.update(issuer, (current) => current && withRefreshToken(current, record.registration_id, refresh));
      let answer: JsonAnswer;
      try {
        answer = await requestJson(this.http, endpoint(service, 'identity'), jsonPost({ type: 'refresh', refresh_token: refresh.value }), 'Refreshing the identity', { spends: true });
      } catch (error) {
        if (outcomeUnknown(error)) return error;
        await keep(); // certainly not processed (never sent, or 503 with Retry-After): still unspent
        throw error;
      }
      if (answer.status === 200) {
        // Processed, so spent: an answer that does not read leaves no refresh token to keep.
        const identity = storedIdentity(valueOf(readRefreshEnvelope(answer.body), 'Refreshing the identity', answer).identity);
        await this.save(issuer, { ...record, identity, access_token: undefined });
        return this.exchange(service, identity, resource);
      }
      if (answer.status !== 400) {
        await keep(); // refused without being looked at (a 401, a 429…): still unspent
        throw fromServiceError(answer.status, answer.body, 'Refreshing the identity');
      }
    }
    return undefined;
  }

  private async register(
    service: ServiceInfo,
    record: IssuerRecord | undefined,
    request: { email?: string; idJag?: string; resource?: string; force: boolean; lostRefresh?: AuthmdClientError },
  ): Promise<AuthResult> {
    const { issuer } = service;
    const offered = (type: string) => service.identityTypes.length === 0 || service.identityTypes.includes(type);
    const idJag = request.idJag ?? (offered('identity_assertion') ? await this.options.idJag?.({ issuer, resource: service.resource }) : undefined);
    if (idJag) {
      const send = (assertion: string) =>
        requestJson(
          this.http,
          endpoint(service, 'identity'),
          jsonPost({ type: 'identity_assertion', assertion_type: tokenTypes.idJag, assertion }),
          'Registering with an ID-JAG',
          { spends: true },
        );
      const answer = await sendIdJagOnce(send, idJag, async () => this.options.idJag?.({ issuer, resource: service.resource }));
      const what = 'Registering with an ID-JAG';
      if (answer.status === 401 && refusalOf(answer.body)?.error === 'interaction_required') {
        return this.claimRequiredBy(service, 'identity_assertion', this.readRegistration(answer, service, what), undefined);
      }
      if (answer.status !== 200) throw fromServiceError(answer.status, answer.body, what);
      const registration = this.readRegistration(answer, service, what);
      if (!registration.identity) throw new AuthmdClientError('invalid_response', 'The ID-JAG registration came without an identity assertion.', { status: answer.status, body: answer.body });
      const identity = storedIdentity(registration.identity);
      await this.save(issuer, { registration_id: registration.id, registration_type: 'identity_assertion', claimed: true, identity });
      return this.exchange(service, identity, request.resource);
    }
    if (request.email && offered('service_auth')) {
      const what = 'Registering by email';
      const answer = await requireJson(this.http, endpoint(service, 'identity'), jsonPost({ type: 'service_auth', login_hint: request.email }), what);
      return this.claimRequiredBy(service, 'service_auth', this.readRegistration(answer, service, what), request.email);
    }
    // Only a registration bound to a user is protected (claimed, or one that came with an identity for
    // a user); an email claim nobody finished bound no one and does not block a new registration.
    const userBound = record !== undefined && (record.claimed || (record.registration_type !== 'anonymous' && record.identity !== undefined));
    if (userBound && !request.force) {
      const why = request.lostRefresh
        ? `The answer to the refresh at ${issuer} was lost (${request.lostRefresh.message}). The refresh token is spent and is not sent again: the service takes a second use for theft and revokes the registration's tokens. The stored registration belongs to a user, so`
        : `The stored registration at ${issuer} belongs to a user and can no longer be refreshed;`;
      throw new AuthmdClientError(
        'reauthentication_required',
        `${why} this client will not replace it with an anonymous one. Authenticate again with the user's email or an ID-JAG (or force a new registration).`,
        { status: 401 },
      );
    }
    if (!offered('anonymous')) {
      throw new AuthmdClientError('no_applicable_method', `${issuer} offers ${service.identityTypes.join(', ')}; give an email or an ID-JAG source to register there.`);
    }
    const what = 'Registering anonymously';
    const answer = await requireJson(this.http, endpoint(service, 'identity'), jsonPost({ type: 'anonymous' }), what);
    const registration = this.readRegistration(answer, service, what);
    if (!registration.identity) throw new AuthmdClientError('invalid_response', 'The anonymous registration came without an identity assertion.', { status: answer.status, body: answer.body });
    const identity = storedIdentity(registration.identity);
    const { claim } = registration;
    if (claim) this.pending.set(issuer, { claimToken: claim.token, claimUrl: claim.url, registrationId: registration.id, registrationType: 'anonymous', loginHint: undefined, handoff: undefined });
    await this.save(issuer, { registration_id: registration.id, registration_type: 'anonymous', claimed: false, identity });
    return this.exchange(service, identity, request.resource);
  }

  /** Claims an anonymous registration (or asks for a new link) for the human with this email. */
  private async startClaim(service: ServiceInfo, pending: PendingClaim, email: string): Promise<AuthResult> {
    const what = 'Starting the claim';
    const answer = await requireJson(
      this.http,
      pending.claimUrl,
      // The current dialect names the claim method service_auth; v0.7 named it login_hint.
      jsonPost({ type: service.dialects.current ? 'service_auth' : 'login_hint', claim_token: pending.claimToken, login_hint: email }),
      what,
    );
    const started = readEnvelope(readClaimStartedEnvelope, answer, service, what);
    const claim = { registrationId: started.registration.id, type: pending.registrationType, claimToken: pending.claimToken, claimUrl: pending.claimUrl };
    return this.claimRequired(service, claim, started.attempt, email);
  }

  private readRegistration(answer: JsonAnswer, service: ServiceInfo, what: string): RegistrationRead {
    return readEnvelope((body, dialects) => readRegistrationEnvelope(body, dialects, this.clock()), answer, service, what);
  }

  /** The hand-off a registration answer asks for: its claim, and the attempt whose page the person opens. */
  private claimRequiredBy(service: ServiceInfo, type: RegistrationType, registration: RegistrationRead, loginHint: string | undefined): Promise<ClaimRequiredResult> {
    const { claim } = registration;
    if (!claim?.attempt) throw new AuthmdClientError('unexpected_response', 'The service asked for a claim but sent no claim token or verification link.');
    return this.claimRequired(service, { registrationId: registration.id, type, claimToken: claim.token, claimUrl: claim.url }, claim.attempt, loginHint);
  }

  private async claimRequired(
    service: ServiceInfo,
    claim: { registrationId: string; type: RegistrationType; claimToken: string; claimUrl: string },
    attempt: AttemptRead,
    loginHint: string | undefined,
  ): Promise<ClaimRequiredResult> {
    const { registrationId, type, claimToken, claimUrl } = claim;
    const handoff: Handoff = {
      issuer: service.issuer,
      registrationId,
      verificationUri: attempt.verificationUri,
      expiresAt: iso(attempt.expiresAt),
      readBack: service.dialects.current,
      userCode: service.dialects.v07 ? attempt.agentCode : undefined,
      interval: attempt.interval,
    };
    this.pending.set(service.issuer, { claimToken, claimUrl, registrationId, registrationType: type, loginHint, handoff });
    const known = await this.store.get(service.issuer);
    if (!known || known.registration_id !== registrationId) {
      await this.save(service.issuer, { registration_id: registrationId, registration_type: type, claimed: false });
    }
    await this.options.prompt?.show(handoff);
    return claimRequiredResult(handoff);
  }

  /**
   * The answer to a claim completion was lost. The code is not sent again (it spends one of the
   * attempt's tries, and a completed claim answers `already_claimed` and never hands its identity out
   * twice): the claim's state is read instead, through the claim grant where the service speaks it.
   */
  private async afterLostCompletion(service: ServiceInfo, pending: PendingClaim, lost: AuthmdClientError, resource: string | undefined): Promise<ReadyResult> {
    const state = service.dialects.v07 ? await this.claimState(service, pending, resource) : 'unknown';
    if (typeof state === 'object') return state;
    if (state === 'open') {
      throw new AuthmdClientError('claim_not_completed', `${lost.message} It was not: the claim is still open, so give the code again (the page still shows it).`);
    }
    this.pending.delete(service.issuer);
    const known = state === 'completed' ? 'The service completed the claim, but its answer was lost' : 'The service may have completed the claim (it cannot be asked)';
    throw new AuthmdClientError(
      'claim_answer_lost',
      `${lost.message} ${known}; the code is not sent again, since a claim completes once and its identity is not handed out twice. ${AGAIN}`,
    );
  }

  /**
   * One look at a claim through the claim grant, which spends nothing here: the tokens if they are
   * still to be handed over, `open` while the claim is not completed, `completed` once they were
   * handed over already (to the read-back answer that was lost). `unknown` when no answer says.
   */
  private async claimState(service: ServiceInfo, pending: PendingClaim, resource: string | undefined): Promise<ReadyResult | 'open' | 'completed' | 'unknown'> {
    for (let look = 0; look < 2; look++) {
      const form = formPost({ grant_type: grantTypes.claim, claim_token: pending.claimToken, resource });
      const answer = await requestJson(this.http, endpoint(service, 'token'), form, 'Checking the claim', { spends: true }).catch(() => undefined);
      if (!answer) return 'unknown';
      if (answer.status === 200) return this.claimedByPoll(service, pending, answer, resource);
      const refusal = refusalOf(answer.body);
      if (refusal?.error === 'authorization_pending') return 'open';
      if (refusal?.error === 'invalid_grant') return 'completed';
      // Denied, expired: the claim's outcome, whatever the lost answer said.
      if (refusal?.error !== 'slow_down') throw fromServiceError(answer.status, answer.body, 'Completing the claim');
      const asked = refusal.extra.interval;
      await this.http.sleep(Math.max(typeof asked === 'number' ? asked : 0, pending.handoff?.interval ?? 5) * 1000);
    }
    return 'unknown';
  }

  /** The claim grant's 200: the access token, and the claimed identity with it. */
  private async claimedByPoll(service: ServiceInfo, pending: PendingClaim, answer: JsonAnswer, resource: string | undefined): Promise<ReadyResult> {
    this.pending.delete(service.issuer);
    const token = valueOf(readTokenResponse(answer.body), 'Polling for the claim', answer);
    const record: IssuerRecord = {
      registration_id: pending.registrationId,
      registration_type: pending.registrationType,
      claimed: true,
      identity: token.identity && storedIdentity(token.identity),
      access_token: storedAccessToken(token, this.clock(), resource),
    };
    await this.save(service.issuer, record);
    return ready(record, tokenFields(token));
  }

  private async exchange(service: ServiceInfo, identity: StoredIdentity, resource: string | undefined): Promise<ReadyResult> {
    const what = 'Exchanging the identity assertion';
    const answer = await requireJson(this.http, endpoint(service, 'token'), formPost({ grant_type: grantTypes.jwtBearer, assertion: identity.assertion, resource }), what);
    const token = valueOf(readTokenResponse(answer.body), what, answer);
    const record = await this.store.update(service.issuer, (current) => current && { ...current, access_token: storedAccessToken(token, this.clock(), resource) });
    return ready(record!, tokenFields(token));
  }

  private remember(service: ServiceInfo): void {
    for (const prefix of [service.issuer, service.resource]) {
      if (prefix === undefined) continue;
      const url = new URL(prefix);
      this.known.set(withoutTrailingSlash(prefix), { origin: url.origin, path: withoutTrailingSlash(url.pathname), issuer: service.issuer });
    }
  }

  /** The issuer of the longest known resource or issuer that the URL falls under (same origin, path prefix). */
  private issuerFor(url: string): string | undefined {
    if (!URL.canParse(url)) return undefined;
    const target = new URL(url);
    let best: { path: string; issuer: string } | undefined;
    for (const known of this.known.values()) {
      const { origin, path } = known;
      const under = origin === target.origin && (path === '' || target.pathname === path || target.pathname.startsWith(`${path}/`));
      if (under && (!best || path.length > best.path.length)) best = known;
    }
    return best?.issuer;
  }

  private inLane<T>(issuer: string, work: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(issuer) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.lanes.set(issuer, next.catch(() => undefined));
    return next;
  }

  private pendingClaim(issuer: string): PendingClaim {
    const pending = this.pending.get(issuer);
    if (!pending) {
      throw new AuthmdClientError('no_pending_claim', `No claim is in progress for ${issuer} in this process (claim tokens are kept in memory only). Authenticate again to start one.`);
    }
    return pending;
  }

  private async save(issuer: string, record: IssuerRecord): Promise<void> {
    await this.store.update(issuer, () => record);
  }
}

/** An endpoint of the current and v0.7 dialects; discovery only picks those when both are advertised. */
function endpoint(service: ServiceInfo, name: 'identity' | 'token'): string {
  const url = service.endpoints[name];
  if (!url) throw new AuthmdClientError('agent_auth_unsupported', `${service.issuer} advertises no ${name} endpoint.`);
  return url;
}

/** What to do when a claim's outcome was lost with its answer. */
const AGAIN = "Authenticate again (with the user's email) to register anew; the person approves once more.";

/** The record without the refresh token `value` (sent, so spent, whatever the answer). */
function withoutRefreshToken(record: IssuerRecord, value: string): IssuerRecord {
  if (record.identity?.refresh_token?.value !== value) return record;
  const { refresh_token: _spent, ...identity } = record.identity;
  return { ...record, identity };
}

/** The refresh token back in the record, when nothing replaced it meanwhile (it was certainly not spent). */
function withRefreshToken(record: IssuerRecord, registrationId: string, token: { value: string; expires_at: string }): IssuerRecord {
  if (record.registration_id !== registrationId || !record.identity || record.identity.refresh_token) return record;
  return { ...record, identity: { ...record.identity, refresh_token: token } };
}

/** A token response as `ready` takes it (no `expires_in`: stored as expiring at once, see `storedAccessToken`). */
function tokenFields(token: AccessTokenRead): { access_token: string; expires_in: number; scope?: string } {
  const scope = token.scopes?.join(' ');
  return { access_token: token.accessToken, expires_in: token.expiresIn ?? 0, ...(scope ? { scope } : {}) };
}

function ready(record: IssuerRecord, token: { access_token: string; expires_in: number; scope?: string }): ReadyResult {
  return {
    status: 'ready',
    access_token: token.access_token,
    token_type: 'Bearer',
    expires_in: token.expires_in,
    ...(token.scope ? { scope: token.scope } : {}),
    registration_id: record.registration_id,
    registration_type: record.registration_type,
    claimed: record.claimed,
  };
}

/** Turns an expected refusal (`code`) into "no result, try the next way"; anything else stays an error. */
function settle(error: unknown, code: string): undefined {
  if (error instanceof AuthmdClientError && error.code === code) return undefined;
  throw error;
}

