/**
 * Outbound HTTP goes through the service's SSRF-safe fetcher (`@authmd/core/fetch`): special-use
 * addresses refused at connect time (unless `allowLoopback`), no redirects, a timeout and a body cap.
 * The provider takes a fetcher by injection (tests, proxies); this is the default.
 */
export { safeFetch as defaultFetcher, type Fetcher, type SafeFetchOptions, type SafeResponse } from '@authmd/core/fetch';

/**
 * The codes of the safe fetcher's errors, read from `error.code` when present. An error without a code
 * (anything else thrown) is treated as a network failure.
 */
export type FetchFailure = 'invalid_url' | 'insecure_url' | 'blocked_address' | 'redirect' | 'timeout' | 'too_large' | 'network';

export function fetchFailure(error: unknown): FetchFailure {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'invalid_url':
    case 'insecure_url':
    case 'blocked_address':
    case 'redirect':
    case 'timeout':
    case 'too_large':
    case 'network':
      return code;
    default:
      return 'network';
  }
}

/** Failures that the same request will meet again: retrying them is pointless. */
export function isPermanentFetchFailure(failure: FetchFailure): boolean {
  return failure === 'invalid_url' || failure === 'insecure_url' || failure === 'blocked_address' || failure === 'redirect';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
