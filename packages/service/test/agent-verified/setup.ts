import { expect } from 'vitest';
import type { ServiceOptions } from '@authmd/service';
import { safeFetch, type Fetcher } from '@authmd/service/fetch';
import { postJson, type HarnessOptions, type RunningService } from '../support/harness.ts';
import { pageCode } from '../../../conformance/src/human/authmd-pages.ts';
import type { Browser } from '../claim/browser.ts';
import { claimStart, completeClaim, jwtPayload } from '../claim/flows.ts';
import type { TestProvider } from './test-provider.ts';

export type Json = Record<string, any>;

type TrustOptions = NonNullable<ServiceOptions['trust']>;

const UNLIMITED = { perIp: 1_000_000, perService: 1_000_000 };

export interface TrustedSetup {
  svc: RunningService;
  base: string;
  /** Every URL the service fetched, in order, through its configured fetcher (the real safeFetch). */
  fetches: string[];
}

export interface TrustedOptions extends HarnessOptions {
  /** Providers on the trust list (each attached to the service). */
  providers: TestProvider[];
  /** Per-provider changes to its trust entry. */
  entry?: (provider: TestProvider) => Json;
  /** Trust options beyond `issuers` (allowLoopback is on). */
  trustOptions?: Partial<TrustOptions>;
  /** Providers that are not trusted but should mint for this service. */
  strangers?: TestProvider[];
}

/**
 * A service that trusts the given providers (on 127.0.0.1, so `allowLoopback`), whose outbound
 * fetches go through the real SSRF-safe fetcher wrapped by a counter.
 */
export async function trustedService(start: (options?: HarnessOptions) => Promise<RunningService>, options: TrustedOptions): Promise<TrustedSetup> {
  const { providers, entry, trustOptions, strangers = [], ...harness } = options;
  const fetches: string[] = [];
  const fetcher: Fetcher = (url, fetchOptions) => {
    fetches.push(url);
    return safeFetch(url, fetchOptions);
  };
  const svc = await start({
    fetcher,
    rateLimits: { anonymous: UNLIMITED, service_auth: UNLIMITED, identity_assertion: UNLIMITED },
    ...harness,
    trust: {
      issuers: providers.map((p) => p.trustEntry(entry?.(p) ?? {})) as TrustOptions['issuers'],
      allowLoopback: true,
      ...trustOptions,
    },
  });
  for (const provider of [...providers, ...strangers]) provider.attach({ audience: svc.base, clock: svc.clock });
  return { svc, base: svc.base, fetches };
}

export function presentIdJag(base: string, assertion: string): Promise<Response> {
  return postJson(`${base}/agent/identity`, { type: 'identity_assertion', assertion });
}

/** Presents an ID-JAG that must be accepted; returns the 200 body. */
export async function registerIdJag(base: string, assertion: string): Promise<Json> {
  const response = await presentIdJag(base, assertion);
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body;
}

/** A 400 `{error:"invalid_request", reason}` refusal of an ID-JAG. */
export async function expectRefused(response: Response, reason: string, error = 'invalid_request'): Promise<Json> {
  const body = await response.json();
  expect({ status: response.status, error: body.error, reason: body.reason }, JSON.stringify(body)).toEqual({ status: 400, error, reason });
  expect(typeof body.error_description).toBe('string');
  return body;
}

export function deliverSet(base: string, token: string, contentType = 'application/secevent+jwt'): Promise<Response> {
  return fetch(`${base}/agent/event/notify`, { method: 'POST', headers: { 'content-type': contentType, accept: 'application/json' }, body: token });
}

/** A SET refusal: 400 with exactly `{err, description}`. */
export async function expectSetRefused(response: Response, err: string): Promise<Json> {
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(400);
  expect(Object.keys(body).sort()).toEqual(['description', 'err']);
  expect(body.err, JSON.stringify(body)).toBe(err);
  expect(typeof body.description).toBe('string');
  return body;
}

export async function expectSetAccepted(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(202);
}

/**
 * What an agent could do to get a pending claim confirmed by `browser`'s account: re-mint the attempt
 * for that account's email, open the page, press Authorize and read the code back. Each step may be
 * refused; the caller checks the outcome that matters.
 */
export async function tryToConfirmAs(base: string, browser: Browser, claimToken: string, email: string): Promise<void> {
  const started = await claimStart(base, { type: 'service_auth', claim_token: claimToken, login_hint: email });
  if (started.status !== 200) return;
  const uri: string = (await started.json()).attempt.verification_uri;
  const page = await browser.open(uri);
  if (page.status !== 200) return;
  const revealed = await browser.submit(page, '/claim/authorize');
  const code = pageCode(revealed.html);
  if (!code) return;
  await completeClaim(base, claimToken, code);
}

/**
 * After someone else tried to get `victim`'s pending link confirmed: the provider account's next
 * ID-JAG still needs its own human (401 interaction_required) and never leads into `intruder`'s account.
 */
export async function expectNotLinkedTo(next: Response, intruder: string): Promise<void> {
  const body = await next.json();
  expect(body.identity ? jwtPayload(body.identity.assertion).email : undefined).not.toBe(intruder);
  expect(next.status, JSON.stringify(body)).toBe(401);
  expect(body.error).toBe('interaction_required');
}
