/** The SSRF-safe fetcher, from @authmd/core (the provider uses it too). */
export * from '@authmd/core/fetch';
