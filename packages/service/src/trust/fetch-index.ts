/** The SSRF-safe fetcher the service uses for every outbound request; the provider package reuses it. */
export { safeFetch, SafeFetchError, type Fetcher, type SafeFetchErrorCode, type SafeFetchOptions, type SafeResponse } from './safe-fetch.ts';
export { isSpecialUse } from './special-use.ts';
