import { expect } from 'vitest';
import { postForm, postJson, registerAnonymous } from '../support/harness.ts';
import { pageCode as codeOnPage } from '../../../conformance/src/human/authmd-pages.ts';
import { Browser, type Page } from './browser.ts';

/** The agent's side of the claim ceremony over HTTP, and the whole ceremony end to end. */

export type Json = Record<string, any>;

export const CLAIM_GRANT = 'urn:workos:agent-auth:grant-type:claim';
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export async function registerServiceAuth(base: string, loginHint: string): Promise<Json> {
  const response = await postJson(`${base}/agent/identity`, { type: 'service_auth', login_hint: loginHint });
  if (response.status !== 200) throw new Error(`service_auth registration failed: ${response.status} ${await response.text()}`);
  return response.json();
}

export function claimStart(base: string, body: unknown): Promise<Response> {
  return postJson(`${base}/agent/identity/claim`, body);
}

/** Starts a claim attempt that must work; returns the response body. */
export async function startClaim(base: string, claimToken: string, email: string): Promise<Json> {
  const response = await claimStart(base, { type: 'service_auth', claim_token: claimToken, login_hint: email });
  if (response.status !== 200) throw new Error(`claim start failed: ${response.status} ${await response.text()}`);
  return response.json();
}

export function completeClaim(base: string, claimToken: string, userCode: string): Promise<Response> {
  return postJson(`${base}/agent/identity/claim/complete`, { claim_token: claimToken, user_code: userCode });
}

export function pollClaim(base: string, claimToken: string): Promise<Response> {
  return postForm(`${base}/oauth2/token`, { grant_type: CLAIM_GRANT, claim_token: claimToken });
}

export function refresh(base: string, refreshToken: string): Promise<Response> {
  return postJson(`${base}/agent/identity`, { type: 'refresh', refresh_token: refreshToken });
}

/** The attempt token (the secret in verification_uri). */
export function attemptToken(verificationUri: string): string {
  const token = new URL(verificationUri).searchParams.get('token');
  if (!token) throw new Error(`no token in ${verificationUri}`);
  return token;
}

/** The code the page shows after Authorize (read-back direction). */
export function pageCode(page: Page): string {
  const code = codeOnPage(page.html);
  if (!code) throw new Error(`no page code on the page (${page.status}):\n${page.html.slice(0, 2000)}`);
  return code;
}

/** Opens the claim page as a signed-in browser and presses Authorize; returns the page code. */
export async function authorize(browser: Browser, verificationUri: string): Promise<string> {
  const claimPage = await browser.open(verificationUri);
  expect(claimPage.status, claimPage.html).toBe(200);
  const revealed = await browser.submit(claimPage, '/claim/authorize');
  expect(revealed.status, revealed.html).toBe(200);
  return pageCode(revealed);
}

/** Opens the claim page and presses Deny. */
export async function deny(browser: Browser, verificationUri: string): Promise<Page> {
  const claimPage = await browser.open(verificationUri);
  expect(claimPage.status, claimPage.html).toBe(200);
  return browser.submit(claimPage, '/claim/deny');
}

/** Opens the claim page and types the agent's code (type-in direction). */
export async function typeIn(browser: Browser, verificationUri: string, code: string): Promise<Page> {
  const claimPage = await browser.open(verificationUri);
  expect(claimPage.status, claimPage.html).toBe(200);
  return browser.submit(claimPage, '/claim/code', { code });
}

export async function signedIn(base: string, email: string): Promise<Browser> {
  const browser = new Browser(base);
  await browser.signIn(email);
  return browser;
}

/** A code that is certainly not `code`. */
export function wrongCode(code: string): string {
  return String((Number(code) + 1) % 1_000_000).padStart(6, '0');
}

export interface ReadBackClaim {
  registration: Json;
  browser: Browser;
  claimToken: string;
  verificationUri: string;
  agentCode: string | undefined;
  pageCode: string;
  claimed: Json;
}

/**
 * The whole read-back ceremony for a fresh registration: register (anonymous: then start a claim),
 * sign in as `email`, Authorize, read the page code back to /complete.
 */
export async function claimByReadBack(base: string, options: { type: 'anonymous' | 'service_auth'; email: string; browser?: Browser }): Promise<ReadBackClaim> {
  const registration = options.type === 'anonymous' ? await registerAnonymous(base) : await registerServiceAuth(base, options.email);
  const claimToken: string = registration.claim.token;
  let verificationUri: string;
  let agentCode: string | undefined;
  if (options.type === 'anonymous') {
    const started = await startClaim(base, claimToken, options.email);
    verificationUri = started.attempt.verification_uri;
    agentCode = started.claim_attempt?.user_code;
  } else {
    verificationUri = registration.claim.attempt.verification_uri;
    agentCode = registration.claim.user_code;
  }
  const browser = options.browser ?? (await signedIn(base, options.email));
  const code = await authorize(browser, verificationUri);
  const response = await completeClaim(base, claimToken, code);
  expect(response.status).toBe(200);
  return { registration, browser, claimToken, verificationUri, agentCode, pageCode: code, claimed: await response.json() };
}

/** Every key path of a JSON value with the type (and, for strings, the length) of its value. */
export function shapeOf(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) return [`${path}: array(${value.length})`, ...value.flatMap((item, i) => shapeOf(item, `${path}[${i}]`))];
  if (value !== null && typeof value === 'object') {
    return [`${path}: object`, ...Object.keys(value).sort().flatMap((key) => shapeOf((value as Json)[key], `${path}.${key}`))];
  }
  if (typeof value === 'string') return [`${path}: string(${value.length})`];
  return [`${path}: ${value === null ? 'null' : typeof value}`];
}

/** Decodes a JWT payload (no verification: the service's own token endpoint does that). */
export function jwtPayload(token: string): Json {
  const payload = token.split('.')[1];
  if (!payload) throw new Error(`not a JWT: ${token}`);
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}
