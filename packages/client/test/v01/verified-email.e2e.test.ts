import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { afterTest } from '../../../../test-support/after-test.ts';
import { AgentClient, FileCredentialStore, type ClaimRequiredResult } from '../../src/index.ts';
import { tempStore } from '../cli/support.ts';
import { E2E_TIMEOUT, notePost, recordingFetch, recordingPrompt, rejectionOf, statusOf } from '../e2e/support.ts';
import { claimEmail, MINUTE, startV01Service, wrongCode } from './support.ts';

/** issue 12: registering by email on a v0.1-only service: the person reads the emailed code back. */
describe('v0.1 verified_email registration', () => {
  it(
    'a wrong code is refused (ask again), the right one gives an API key, kept in the file store for the next process',
    async () => {
      const svc = await startV01Service();
      const store = tempStore();
      afterTest(() => store.remove());
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const client = new AgentClient({ fetch, prompt, clock: svc.clock, store: new FileCredentialStore({ path: store.path }) });

      const claim = (await client.authenticate({ url: svc.base, email: 'bea@example.com' })) as ClaimRequiredResult;
      expect(claim).toMatchObject({ status: 'claim_required', verification_uri: 'mailto:bea@example.com', handoff: { emailedTo: 'bea@example.com' } });
      expect(sent.filter((r) => r.url === `${svc.base}/agent/auth`).map((r) => r.body)).toEqual([
        { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'bea@example.com', requested_credential_type: 'api_key' },
      ]);
      expect(prompt.shown).toHaveLength(1);
      // Asking again while the code lives: the same hand-off, no second email.
      expect(await client.authenticate({ url: svc.base })).toMatchObject({ status: 'claim_required', registration_id: claim.registration_id });
      const { code, count } = await claimEmail(svc.base, 'bea@example.com');
      expect(count).toBe(1);

      const wrong = await rejectionOf(client.completeClaim(svc.base, wrongCode(code)));
      expect(wrong).toMatchObject({ code: 'invalid_user_code', status: 401 });
      expect(wrong.message).toMatch(/not the code in the latest email to bea@example\.com \(4 tries left\)/);

      const ready = await client.completeClaim(svc.base, code);
      expect(ready).toMatchObject({ status: 'ready', registration_id: claim.registration_id, registration_type: 'service_auth', claimed: true, credential_type: 'api_key', expires_in: null });
      expect(ready.access_token).toMatch(/^sk_/);
      expect(await statusOf(await client.fetch(`${svc.base}/api/notes`, notePost('by bea')))).toBe(200);

      const file = JSON.parse(readFileSync(store.path, 'utf8'));
      expect(file.issuers[svc.base]).toMatchObject({ dialect: 'v0.1', claimed: true, credential: { type: 'api_key', value: ready.access_token, expires_at: null } });
      const nextProcess = new AgentClient({ fetch, clock: svc.clock, store: new FileCredentialStore({ path: store.path }) });
      const registered = sent.filter((r) => r.url.startsWith(`${svc.base}/agent/auth`)).length;
      expect(await nextProcess.authenticate({ url: svc.base })).toMatchObject({ status: 'ready', access_token: ready.access_token, claimed: true });
      expect(sent.filter((r) => r.url.startsWith(`${svc.base}/agent/auth`))).toHaveLength(registered);
    },
    E2E_TIMEOUT,
  );

  it(
    'an expired code: the client has a new one emailed (code_resent), and that one completes the claim',
    async () => {
      const svc = await startV01Service();
      const prompt = recordingPrompt();
      const client = new AgentClient({ prompt, clock: svc.clock });
      await client.authenticate({ url: svc.base, email: 'cy@example.com' });
      const first = await claimEmail(svc.base, 'cy@example.com');
      svc.clock.advance(11 * MINUTE);

      const expired = await rejectionOf(client.completeClaim(svc.base, first.code));
      expect(expired.code).toBe('code_resent');
      expect(expired.message).toMatch(/expired.*emailed a new code to cy@example\.com/);
      const second = await claimEmail(svc.base, 'cy@example.com');
      expect(second.count).toBe(2);
      expect(prompt.shown).toHaveLength(2);
      expect(prompt.shown[1]!.emailedTo).toBe('cy@example.com');

      const ready = await client.completeClaim(svc.base, second.code);
      expect(ready).toMatchObject({ status: 'ready', claimed: true, credential_type: 'api_key' });
      expect(await statusOf(await client.fetch(`${svc.base}/api/notes`, notePost('by cy')))).toBe(200);
    },
    E2E_TIMEOUT,
  );
});
