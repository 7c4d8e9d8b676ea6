import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@authmd/service';
import { afterEach, expect } from 'vitest';
import { startDemo, type RunningDemo } from '../../../../examples/demo/src/start.ts';
import { Browser } from '../../../conformance/src/human/browser.ts';
import type { AgentClientOptions, Handoff } from '../../src/index.ts';

/**
 * End-to-end support for the @authmd/client tests: the real demo (service + demo provider) on
 * 127.0.0.1, a human at a browser over HTTP, and a fetch that records every request the client sends.
 */

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const CLAIM_GRANT = 'urn:workos:agent-auth:grant-type:claim';
export const E2E_TIMEOUT = 30_000;

const cleanups: (() => Promise<unknown> | unknown)[] = [];

/** Runs `step` after the current test, even when it failed halfway (servers before their directories). */
export function afterTest(step: () => Promise<unknown> | unknown): void {
  cleanups.push(step);
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'cleanup failed');
});

/** Every line the service logged; its audit events are `info('audit', {event, registration_id, …})`. */
export interface RecordingLogger extends Logger {
  lines: { level: string; message: string; fields: Record<string, unknown> }[];
  /** The audit events of one type, oldest first. */
  audit(type: string): Record<string, unknown>[];
}

export function recordingLogger(): RecordingLogger {
  const lines: RecordingLogger['lines'] = [];
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  return {
    lines,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    audit: (type) => lines.filter((line) => line.message === 'audit' && line.fields.event === type).map((line) => line.fields),
  };
}

export interface Demo extends RunningDemo {
  logger: RecordingLogger;
  providerUrl: string;
  /** The notes API: GET lists (notes.read), POST adds (notes.write). */
  api: string;
}

/** The real demo: the auth.md service with the notes API, and the demo provider it trusts. Closed after the test. */
export async function startE2eDemo(): Promise<Demo> {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-client-e2e-'));
  afterTest(() => rmSync(dataDir, { recursive: true, force: true }));
  const logger = recordingLogger();
  const demo = await startDemo({ port: 0, providerPort: 0, dataDir, logger, host: '127.0.0.1' });
  afterTest(() => demo.close());
  expect(new URL(demo.url).hostname).toBe('127.0.0.1');
  return Object.assign(demo, { logger, providerUrl: demo.provider!.url, api: `${demo.url}/api/notes` });
}

export interface SentRequest {
  url: string;
  method: string;
  /** The form or JSON body, parsed. */
  body: Record<string, unknown>;
  authorization: string | null;
}

/** A fetch for the client that records what it sends. */
export function recordingFetch(): { fetch: NonNullable<AgentClientOptions['fetch']>; sent: SentRequest[] } {
  const sent: SentRequest[] = [];
  const recording: NonNullable<AgentClientOptions['fetch']> = async (input, init = {}) => {
    const headers = new Headers(init.headers);
    const type = headers.get('content-type') ?? '';
    const raw = typeof init.body === 'string' ? init.body : '';
    const body = !raw ? {} : type.includes('json') ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw));
    sent.push({ url: String(input), method: (init.method ?? 'GET').toUpperCase(), body, authorization: headers.get('authorization') });
    return fetch(input, init);
  };
  return { fetch: recording, sent };
}

/** The jwt-bearer exchanges among the recorded requests. */
export const exchanges = (sent: SentRequest[]): SentRequest[] => sent.filter((r) => r.url.endsWith('/oauth2/token') && r.body.grant_type === JWT_BEARER);
/** The registrations (`POST /agent/identity` of any type but refresh) among the recorded requests. */
export const registrations = (sent: SentRequest[]): SentRequest[] => sent.filter((r) => r.url.endsWith('/agent/identity') && r.body.type !== 'refresh');

/** A prompt that keeps every hand-off the client shows. */
export function recordingPrompt(): { show(handoff: Handoff): void; shown: Handoff[] } {
  const shown: Handoff[] = [];
  return { shown, show: (handoff) => void shown.push(handoff) };
}

/** A person at a browser, signed in at the demo service as `email` (emailed code from the dev mailbox). */
export async function signedInHuman(base: string, email: string): Promise<Browser> {
  const browser = new Browser(base);
  await browser.signIn(email);
  return browser;
}

/** Read-back: opens the link, presses Authorize, returns the code the page shows. */
export async function authorizeOnPage(browser: Browser, verificationUri: string): Promise<string> {
  const claimPage = await browser.open(verificationUri);
  expect(claimPage.status, claimPage.html).toBe(200);
  const shown = await browser.submit(claimPage, '/claim/authorize');
  expect(shown.status, shown.html).toBe(200);
  const code = /data-testid="page-code">(\d{6})</.exec(shown.html)?.[1];
  expect(code, 'the page shows a six-digit code').toBeDefined();
  return code!;
}

/** Type-in: opens the link and types the agent's code. */
export async function typeCodeOnPage(browser: Browser, verificationUri: string, code: string): Promise<void> {
  const claimPage = await browser.open(verificationUri);
  expect(claimPage.status, claimPage.html).toBe(200);
  const linked = await browser.submit(claimPage, '/claim/code', { code });
  expect(linked.status, linked.html).toBe(200);
}

/** POST a JSON body to the service (the test acting behind the client's back). */
export async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

/** POST a form to the service (the test acting behind the client's back). */
export async function postForm(url: string, fields: Record<string, string>): Promise<{ status: number; body: Record<string, any> }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

export const notePost = (text: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) });

/** The status of a response, its body read so the connection is released. */
export async function statusOf(response: Response): Promise<number> {
  await response.arrayBuffer();
  return response.status;
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<any> {
  const outcome = await promise.then(
    (value) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) expect.fail(`expected a rejection, got ${JSON.stringify(outcome.value)?.slice(0, 500)}`);
  return outcome.error;
}

/** Signs `email` in at the demo provider's JSON API; returns the session token an ID-JAG source uses. */
export async function providerSession(providerUrl: string, email: string): Promise<string> {
  const signedIn = await postJson(`${providerUrl}/login`, { email });
  expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
  return signedIn.body.session_token;
}

/** Consent at the provider: agents may get ID-JAGs for this user at `audience` (every time). */
export async function grantConsent(providerUrl: string, sessionToken: string, audience: string): Promise<void> {
  const response = await fetch(`${providerUrl}/grants`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${sessionToken}` },
    body: JSON.stringify({ audience, mode: 'always' }),
  });
  expect(response.status, await response.text()).toBe(201);
}

/** A signal aborted when the current test ends (stops a waiting client's polling if the test fails early). */
export function stopAfterTest(): AbortSignal {
  const controller = new AbortController();
  afterTest(() => controller.abort());
  return controller.signal;
}
