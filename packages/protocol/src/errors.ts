import type { Dialect } from './dialects.ts';

/**
 * The error catalogue. `error` on the wire carries the code the newest AUTH.md uses for the
 * situation (profile.md §2); `names` lists the spelling of older dialects where they differ, used on
 * endpoints only those dialects serve. `hint` is the sentence that tells the caller what to do next.
 */
interface ErrorSpec {
  status: number;
  hint: string;
  names?: Partial<Record<Dialect, string>>;
}

const catalogue = {
  // Any JSON or form endpoint
  invalid_request: { status: 400, hint: 'Fix the request as the description says and send it again.' },
  payload_too_large: { status: 413, hint: 'Send a request body of at most 64 KiB.' },
  not_found: { status: 404, hint: 'Check the path against the service metadata at /.well-known/oauth-authorization-server.' },
  method_not_allowed: { status: 405, hint: 'Use the method named in the Allow header.' },
  rate_limit_exceeded: {
    status: 429,
    hint: 'Wait the number of seconds in retry_after (or the Retry-After header) before trying again.',
    names: { 'v0.7': 'rate_limited', 'v0.1': 'rate_limited' },
  },
  server_error: { status: 500, hint: 'Retry later with exponential backoff; the request itself may be fine.' },
  temporarily_unavailable: { status: 503, hint: 'Retry after the number of seconds in the Retry-After header; the request itself may be fine.' },

  // Registration: POST /agent/identity
  anonymous_not_enabled: { status: 403, hint: 'Register with another method listed in identity_types_supported.' },
  service_auth_not_enabled: {
    status: 403,
    hint: 'Register with another method listed in identity_types_supported.',
    names: { 'v0.1': 'verified_email_not_enabled' },
  },
  unsupported_credential_type: { status: 400, hint: 'Ask for a credential type listed in credential_types_supported for this registration method.' },
  issuer_not_enabled: { status: 400, hint: 'Use a provider this service trusts, or another registration method.' },
  invalid_login_hint: { status: 400, hint: 'Send the user\'s email address as login_hint.' },
  interaction_required: { status: 401, hint: 'Send the user to claim.attempt.verification_uri to confirm the link.' },
  login_required: { status: 401, hint: 'Have the user sign in at the provider again, then mint a fresh ID-JAG.' },
  invalid_refresh_token: { status: 400, hint: 'Exchange a live identity assertion, or register again.' },

  // Claim ceremony: /agent/identity/claim and /complete
  invalid_claim_token: { status: 401, hint: 'Use the claim token from the registration response, or register again.' },
  invalid_claim: { status: 400, hint: 'Use the claim token from the registration response, or register again.' },
  claim_expired: { status: 410, hint: 'Start a new claim attempt; if the registration itself is over, register again.' },
  already_claimed: {
    status: 409,
    hint: 'Exchange its identity assertion instead.',
    names: { 'v0.7': 'claimed_or_in_flight', 'v0.1': 'previously_claimed' },
  },
  claimed_or_in_flight: { status: 409, hint: 'Only an unclaimed anonymous registration can be claimed by email; use the credential you have.' },
  otp_not_generated: { status: 400, hint: 'Start a claim at the claim endpoint first; the person then gets a code by email.' },
  claim_not_confirmed: { status: 409, hint: 'Wait for the user to read you the code the page shows, then send it again.' },
  invalid_user_code: { status: 401, hint: 'Ask the user to read the code again; each attempt allows 5 wrong codes.', names: { 'v0.1': 'otp_invalid' } },
  user_code_expired: { status: 410, hint: 'Start a new claim attempt at the claim endpoint.', names: { 'v0.1': 'otp_expired' } },
  claim_denied: { status: 403, hint: 'Do not retry without asking the user.' },
  claim_revoked: { status: 410, hint: 'Do not retry; ask the service\'s operator.' },
  too_many_attempts: { status: 429, hint: 'Start a new claim attempt; once a registration has used all its attempts, register again.' },

  // OAuth token and revocation endpoints (RFC 6749 §5.2, RFC 8628, RFC 8707)
  invalid_client: { status: 401, hint: 'Authenticate the client as the metadata describes.' },
  invalid_grant: { status: 400, hint: 'Get a fresh identity assertion (refresh, or register again), then exchange it.' },
  unauthorized_client: { status: 400, hint: 'This client may not use this grant type.' },
  unsupported_grant_type: { status: 400, hint: 'Use a grant type listed in grant_types_supported.' },
  invalid_scope: { status: 400, hint: 'Request only scopes the registration holds, or omit scope.' },
  invalid_target: { status: 400, hint: 'Use a resource listed in the service metadata, or omit resource.' },
  authorization_pending: { status: 400, hint: 'Keep polling at the given interval.' },
  slow_down: { status: 400, hint: 'Add 5 seconds to the polling interval and keep polling.' },
  expired_token: { status: 400, hint: 'Start a new claim attempt at the claim endpoint.' },
  access_denied: { status: 400, hint: 'Stop polling; do not retry without asking the user.' },

  // Resource server (RFC 6750)
  unauthorized: { status: 401, hint: 'Follow resource_metadata in WWW-Authenticate to register and get an access token.' },
  invalid_token: {
    status: 401,
    hint: 'Exchange the identity assertion again for a new access token (with a v0.1 credential or API key: register again); if that is refused too, refresh or register again.',
  },
  insufficient_scope: { status: 403, hint: 'Claim the registration (or ask for the scope named in WWW-Authenticate).' },

  // The operator's admin API and console (not part of auth.md)
  operator_unauthorized: { status: 401, hint: 'Send the token of an operator listed in the admin.apiTokens option as Authorization: Bearer.' },
  operator_forbidden: { status: 403, hint: 'Sign in with an address listed in the admin.operators option.' },
  unknown_registration: { status: 404, hint: 'Search the registrations (the console, or GET <admin path>/api/registrations) for its id.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof catalogue;

export function errorSpec(code: ErrorCode): ErrorSpec {
  return catalogue[code];
}

export const errorCodes = Object.keys(catalogue) as ErrorCode[];

/** The spelling of `code` for a dialect; the newest spelling unless that dialect named it otherwise. */
export function wireCode(code: ErrorCode, dialect: Dialect = 'current'): string {
  const spec: ErrorSpec = catalogue[code];
  return spec.names?.[dialect] ?? code;
}

export interface ProtocolErrorOptions {
  /** A more specific machine-readable reason, sent as `reason` (e.g. `replay_detected`). */
  reason?: string;
  /** Logged and recorded, never sent: what exactly went wrong, for the operator. */
  detail?: string;
  /** Extra top-level members of the error body (e.g. `max_age`, `retry_after`). */
  extra?: Record<string, unknown>;
  /** Response headers (e.g. `WWW-Authenticate`, `Retry-After`). */
  headers?: Record<string, string>;
}

/**
 * A protocol error: a stable code, its HTTP status, a description for the caller that says what to
 * do next, and a private detail for logs.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly status: number;
  readonly reason: string | undefined;
  readonly detail: string | undefined;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  readonly description: string;

  constructor(
    readonly code: ErrorCode,
    description: string,
    options: ProtocolErrorOptions = {},
  ) {
    super(`${code}: ${description}`);
    this.description = asciiDescription(description);
    this.status = catalogue[code].status;
    this.reason = options.reason;
    this.detail = options.detail;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  /** The JSON body for agent-facing and OAuth endpoints: `error`, `error_description`, `message`. */
  toBody(dialect: Dialect = 'current'): Record<string, unknown> {
    const body: Record<string, unknown> = {
      error: wireCode(this.code, dialect),
      error_description: this.description,
      message: this.description,
    };
    if (this.reason) body.reason = this.reason;
    return { ...body, ...this.extra };
  }
}

/**
 * RFC 6749 §5.2 allows only printable ASCII without `"` and `\` in `error_description`; anything
 * else (which may echo caller input) becomes `?`.
 */
export function asciiDescription(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?');
}

/** Builds a ProtocolError whose description is the catalogue's hint preceded by what happened. */
export function protocolError(code: ErrorCode, what: string, options?: ProtocolErrorOptions): ProtocolError {
  return new ProtocolError(code, `${what} ${catalogue[code].hint}`, options);
}

/** RFC 8935 §2.4 error codes of the push-delivery SET receiver, whose body is `{err, description}`. */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied';

export class SetDeliveryError extends Error {
  override readonly name = 'SetDeliveryError';
  readonly status = 400;
  constructor(
    readonly err: SetErrorCode,
    readonly description: string,
    readonly detail?: string,
  ) {
    super(`${err}: ${description}`);
  }

  toBody(): { err: SetErrorCode; description: string } {
    return { err: this.err, description: this.description };
  }
}
