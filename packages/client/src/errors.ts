/**
 * Every failure the client reports: a stable `code` to switch on (the service's protocol code when
 * it sent one), the HTTP status when there was one, and a message that says what to do next.
 */
export class AuthmdClientError extends Error {
  override readonly name = 'AuthmdClientError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: {
      status?: number;
      body?: unknown;
      retryAfterSeconds?: number;
      /** The request may have been processed, but no answer says how (a lost answer, a 5xx). */
      unknownOutcome?: boolean;
    } = {},
  ) {
    super(message);
  }

  get status(): number | undefined {
    return this.details.status;
  }

  toJSON(): { error: string; message: string; status?: number } {
    return { error: this.code, message: this.message, ...(this.details.status ? { status: this.details.status } : {}) };
  }
}

/** What to tell the caller for a service's error code, when its own description is not enough. */
const nextSteps: Record<string, string> = {
  anonymous_not_enabled: 'This service does not register anonymous agents: give an email (--email) or an ID-JAG source.',
  service_auth_not_enabled: 'This service does not register by email: use an ID-JAG source, or anonymous registration if offered.',
  issuer_not_enabled: 'This service does not trust that ID-JAG provider: use another method.',
  invalid_login_hint: 'Give a valid email address.',
  login_required: 'The user must sign in at the provider again, then mint a fresh ID-JAG.',
  rate_limit_exceeded: 'Wait and try again later.',
  rate_limited: 'Wait and try again later.',
  claim_denied: 'The user denied this agent. Ask them before trying again.',
  access_denied: 'The user denied this agent. Ask them before trying again.',
  claim_expired: 'The claim window is over: log in again to register anew.',
  too_many_attempts: 'Too many codes were tried: start a new claim (log in again).',
  // v0.1 (protocol-reference §7.3, §7.5)
  verified_email_not_enabled: 'This service does not register by email: use an ID-JAG source, or anonymous registration if offered.',
  unsupported_credential_type: 'This service does not issue that kind of credential here.',
  otp_invalid: 'That is not the code in the email: check it and give it again.',
  otp_expired: 'The emailed code expired: start the claim again (log in again with the email) for a new one.',
  otp_not_generated: 'No code is waiting for this claim: start the claim again (log in again with the email).',
  previously_claimed: 'This claim was completed already: authenticate again (the stored credential may already work).',
  claimed_or_in_flight: 'This registration is already claimed, or its code is already on its way by email: nothing to start.',
  invalid_claim_token: 'The claim token is unknown: authenticate again to register anew.',
};

/** An error answer of the service, as a typed error with a next step. */
export function fromServiceError(status: number, body: unknown, what: string): AuthmdClientError {
  const object = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof object.error === 'string' ? object.error : status >= 500 ? 'server_error' : 'unexpected_response';
  const description = [object.message, object.error_description].find((value) => typeof value === 'string') as string | undefined;
  const step = nextSteps[code];
  const retry = typeof object.retry_after === 'number' ? object.retry_after : undefined;
  // The service's own description says what to do when it gives one; ours fills in when it does not.
  const wait = retry !== undefined ? ` Retry after ${retry} s.` : '';
  const message = `${what} failed (${status} ${code})${description ? `: ${description}` : '.'}${step && !description ? ` ${step}` : ''}${wait}`;
  return new AuthmdClientError(code, message, { status, body, retryAfterSeconds: retry });
}

/** A network failure, named by its cause (ECONNREFUSED, ENOTFOUND, …) rather than undici's "fetch failed". */
export function networkError(url: string, error: unknown, what?: string): AuthmdClientError {
  const cause = (error as { cause?: { code?: unknown } })?.cause?.code;
  const reason = typeof cause === 'string' ? cause : error instanceof Error ? error.message : String(error);
  const prefix = what ? `${what} failed: could not reach` : 'Could not reach';
  return new AuthmdClientError('network_error', `${prefix} ${new URL(url).origin} (${reason}). Check the URL and that the service is running.`);
}

/** A request that may have been processed although no answer came back (see `requestJson` with `spends`). */
export function outcomeUnknown(error: unknown): error is AuthmdClientError {
  return error instanceof AuthmdClientError && error.details.unknownOutcome === true;
}
