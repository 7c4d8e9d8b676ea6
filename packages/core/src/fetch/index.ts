/** The SSRF-safe fetcher the service uses for every outbound request; the provider uses it too. */
export { safeFetch, SafeFetchError, type Fetcher, type SafeFetchErrorCode, type SafeFetchOptions, type SafeResponse } from './safe-fetch.ts';
export { isLoopback, isSpecialUse } from './special-use.ts';
/** A fetch error's message on one line, for a log line or an error that quotes it. */
export { oneLine } from './fetch-error.ts';
