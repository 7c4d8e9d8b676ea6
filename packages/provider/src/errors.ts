/**
 * What can go wrong when the provider is asked to do something, as a typed error that a host maps to
 * its own responses. `status` is the HTTP status the published sample provider answers with.
 */
export type ProviderErrorCode =
  /** No live consent grant for this user and audience (none, expired, or a `once` grant already used). */
  | 'consent_required'
  /** The user has neither a verified email nor a verified phone number: the service could not match them. */
  | 'missing_verified_email'
  /** The audience could not be resolved to an auth.md service (no metadata, issuer mismatch, unreachable). */
  | 'invalid_audience'
  /** A caller-supplied value is malformed. */
  | 'invalid_request';

const statuses: Record<ProviderErrorCode, number> = {
  consent_required: 403,
  missing_verified_email: 403,
  invalid_audience: 400,
  invalid_request: 400,
};

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  readonly status: number;

  constructor(
    readonly code: ProviderErrorCode,
    message: string,
  ) {
    super(message);
    this.status = statuses[code];
  }
}

export function isProviderError(error: unknown): error is ProviderError {
  return error instanceof ProviderError;
}
