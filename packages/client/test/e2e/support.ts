import { grantTypes } from '@authmd/protocol';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { afterTest } from '../../../../test-support/after-test.ts';
import { recordingLogger, type RecordingLogger } from '../../../../test-support/recording-logger.ts';
import { startDemo, type RunningDemo } from '../../../../examples/demo/src/start.ts';
import { AuthmdPagesHuman } from '../../../conformance/src/human/authmd-pages.ts';
import type { Page } from '../../../conformance/src/human/browser.ts';
import { AgentClient, MemoryCredentialStore, type AgentClientOptions, type ClaimRequiredResult, type Handoff } from '../../src/index.ts';

/**
 * End-to-end support for the @authmd/client tests: the real demo (service + demo provider) on
 * 127.0.0.1, a human at a browser over HTTP, and a fetch that records every request the client sends.
 */

export const E2E_TIMEOUT = 30_000;

export interface Demo extends RunningDemo {
  logger: RecordingLogger;
  providerUrl: string;
  /** The notes API: GET lists (notes.read), POST adds (notes.write). */
  api: string;
}

/**
 * The real demo: the auth.md service with the notes API, and the demo provider it trusts. Closed after the test.
 * Its claim grant asks for a poll every second, not five: these tests wait for the polls, they do not time them.
 */
export async function startE2eDemo(): Promise<Demo> {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-client-e2e-'));
  afterTest(() => rmSync(dataDir, { recursive: true, force: true }));
  const logger = recordingLogger();
  const demo = await startDemo({ port: 0, providerPort: 0, dataDir, logger, host: '127.0.0.1', pollIntervalSeconds: 1 });
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
export const exchanges = (sent: SentRequest[]): SentRequest[] => sent.filter((r) => r.url.endsWith('/oauth2/token') && r.body.grant_type === grantTypes.jwtBearer);
/** The registrations (`POST /agent/identity` of any type but refresh) among the recorded requests. */
export const registrations = (sent: SentRequest[]): SentRequest[] => sent.filter((r) => r.url.endsWith('/agent/identity') && r.body.type !== 'refresh');

/** A prompt that keeps every hand-off the client shows. */
export function recordingPrompt(): { show(handoff: Handoff): void; shown: Handoff[] } {
  const shown: Handoff[] = [];
  return { shown, show: (handoff) => void shown.push(handoff) };
}

/**
 * A person at the demo's pages as `email`: the conformance suite's driver of authmd's own pages
 * (signs in once, with the code from the development mailbox; each step fails saying what the page showed).
 */
export interface Person {
  /** Opens the claim link (signing in first); the claim page, for a test that looks at it before answering. */
  open(verificationUri: string): Promise<Page>;
  /** Read-back: Authorize; the code the page shows. */
  readBack(verificationUri: string): Promise<string>;
  /** Type-in: types the agent's code on the page. */
  typeIn(verificationUri: string, code: string): Promise<void>;
  deny(verificationUri: string): Promise<void>;
}

export function person(base: string, email: string): Person {
  const human = new AuthmdPagesHuman(base);
  return {
    open: (uri) => human.openClaim(uri, email),
    readBack: (uri) => human.readBack(uri, email),
    typeIn: (uri, code) => human.typeIn(uri, email, code),
    deny: (uri) => human.deny(uri, email),
  };
}

/** A client on a memory store the test can read and edit, recording every request it sends. */
export function recordingClient(options: AgentClientOptions = {}): { client: AgentClient; store: MemoryCredentialStore; sent: SentRequest[] } {
  const store = new MemoryCredentialStore();
  const { fetch, sent } = recordingFetch();
  return { client: new AgentClient({ fetch, store, ...options }), store, sent };
}

/** Registers `client` by email and has the person claim it by reading the page's code back. */
export async function claimByReadBack(client: AgentClient, demo: Demo, email: string): Promise<ClaimRequiredResult> {
  const claim = (await client.authenticate({ url: demo.url, email })) as ClaimRequiredResult;
  await client.completeClaim(demo.url, await person(demo.url, email).readBack(claim.verification_uri));
  return claim;
}

/** As if the stored identity assertion had expired and no access token were left: the next call must refresh. */
export function expireStoredAssertion(store: MemoryCredentialStore, issuer: string): Promise<unknown> {
  return store.update(issuer, (record) => record && { ...record, identity: { ...record.identity!, expires_at: new Date(Date.now() - 60_000).toISOString() }, access_token: undefined });
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
