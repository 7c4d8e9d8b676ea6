export type SafeFetchErrorCode = 'invalid_url' | 'insecure_url' | 'blocked_address' | 'redirect' | 'timeout' | 'too_large' | 'network';

/** Why an outbound fetch was refused or failed. Messages are one line and name no internals. */
export class SafeFetchError extends Error {
  override readonly name = 'SafeFetchError';

  constructor(
    readonly code: SafeFetchErrorCode,
    message: string,
  ) {
    super(oneLine(message));
  }
}

export function oneLine(text: string): string {
  return text.split(/[\r\n]/, 1)[0]!;
}
