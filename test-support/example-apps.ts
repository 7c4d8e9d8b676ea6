import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runConformance, startTestProvider, type TestProvider } from '@authmd/conformance';
import { freePort } from './free-port.ts';

/**
 * Checks of what an app need not offer: every example app switches on every registration method, so
 * only the check that needs one switched off is skipped.
 */
const NOT_OFFERED = ['registration.method-not-enabled'];

/**
 * `authmd check <base>` as a person runs it, without `--api` (the metadata names the API), with the
 * given test provider trusted by the app: no check fails, and none is skipped for a reason the app
 * could avoid.
 */
export async function expectEveryCheckPasses(base: string, provider: TestProvider): Promise<void> {
  const report = await runConformance({ base, provider });
  const failed = report.results.filter((result) => result.outcome === 'fail').map((result) => `${result.id}: ${result.message}`);
  expect(failed).toEqual([]);
  const skipped = report.results.filter((result) => result.outcome === 'skip').map((result) => `${result.id}: ${result.message}`);
  expect(skipped.map((line) => line.split(':')[0]), skipped.join('\n')).toEqual(NOT_OFFERED);
  expect(report.summary.passed).toBe(report.results.length - NOT_OFFERED.length);
}

/**
 * The app's own routes around the service: a person vouched for by the provider registers, exchanges,
 * posts a note as JSON through the framework's body parsing and reads it back; a bad token gets the
 * protocol's challenge, naming the API's metadata.
 */
export async function expectNotesRoundTrip(base: string, provider: TestProvider): Promise<void> {
  const idJag = await provider.mintIdJag({ audience: base, email: `round-trip-${Date.now()}@example.com` });
  const registered = await fetch(`${base}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'identity_assertion', assertion_type: 'urn:ietf:params:oauth:token-type:id-jag', assertion: idJag }) });
  expect(registered.status, await registered.clone().text()).toBe(200);
  const { identity } = (await registered.json()) as { identity: { assertion: string } };
  const { assertion } = identity;
  const exchanged = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  });
  expect(exchanged.status, await exchanged.clone().text()).toBe(200);
  const { access_token: token, scope } = (await exchanged.json()) as { access_token: string; scope: string };
  expect(scope.split(' ').sort()).toEqual(['notes.read', 'notes.write']);

  const auth = { authorization: `Bearer ${token}` };
  const posted = await fetch(`${base}/api/notes`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'from the round trip' }) });
  expect(posted.status).toBe(201);
  const listed = (await (await fetch(`${base}/api/notes`, { headers: auth })).json()) as { notes: { text: string }[] };
  expect(listed.notes.map((note) => note.text)).toContain('from the round trip');

  const refused = await fetch(`${base}/api/notes`, { headers: { authorization: 'Bearer nope' } });
  expect(refused.status).toBe(401);
  expect(refused.headers.get('www-authenticate')).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/api/notes"`);
  expect((await fetch(`${base}/nowhere`)).status, "the framework's own 404").toBe(404);
}

/** What an example app's `startNotesApp` takes and gives, whatever its framework. */
export interface ExampleApp {
  url: string;
  close(): Promise<void>;
}
export interface ExampleAppOptions {
  port: number;
  database: string;
  trust?: { issuers: TestProvider['trustEntry'][]; allowLoopback: boolean };
}
export type StartExample = (options: ExampleAppOptions) => Promise<ExampleApp>;

/**
 * Issue 14, "the frameworks people use": an example app, on its real framework, passes `authmd check`
 * with no check skipped that it could pass, and keeps its own routes and body parsing. `startTimeout`:
 * for an app in another process that takes longer to start and stop (Next.js); default the hook timeout.
 */
export function describeExampleApp(framework: string, startNotesApp: StartExample, timeouts: { startTimeout?: number } = {}): void {
  describe(`the ${framework} example`, () => {
    let provider: TestProvider;
    let app: ExampleApp;

    beforeAll(async () => {
      provider = await startTestProvider();
      app = await startNotesApp({
        port: await freePort(),
        database: join(mkdtempSync(join(tmpdir(), `authmd-${framework.toLowerCase()}-`)), 'notes.db'),
        // The check's provider runs on 127.0.0.1 over http: trusting it needs the development switch.
        trust: { issuers: [provider.trustEntry], allowLoopback: true },
      });
    }, timeouts.startTimeout);

    afterAll(async () => {
      await app?.close();
      await provider?.close();
    }, timeouts.startTimeout);

    it('passes every check of authmd check', () => expectEveryCheckPasses(app.url, provider), 180_000);

    it('keeps its own routes and body parsing around the service', () => expectNotesRoundTrip(app.url, provider));
  });
}
