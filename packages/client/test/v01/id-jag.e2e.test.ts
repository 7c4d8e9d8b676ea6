import { describe, expect, it } from 'vitest';
import { trustedService } from '../../../service/test/agent-verified/setup.ts';
import { providerPerTest } from '../../../service/test/agent-verified/test-provider.ts';
import { AgentClient, type ReadyResult } from '../../src/index.ts';
import { E2E_TIMEOUT, notePost, recordingFetch, recordingPrompt, rejectionOf, statusOf } from '../e2e/support.ts';
import { postJson } from '../../../service/test/support/harness.ts';
import { claimEmail, HOUR, startClosedAfterTest, V01_ONLY } from './support.ts';

/** issue 12: registering with a provider's ID-JAG on a v0.1-only service: an access token at once, re-minted when it expires. */
const startProvider = providerPerTest();

async function v01WithProvider() {
  const provider = await startProvider();
  const { svc } = await trustedService(startClosedAfterTest, { providers: [provider], dialects: V01_ONLY });
  return { provider, svc, api: `${svc.base}/api/notes` };
}

describe('v0.1 identity_assertion with an ID-JAG', () => {
  it(
    'is ready at once with an access token; once it expires, a fresh ID-JAG registers again (same registration)',
    async () => {
      const { provider, svc, api } = await v01WithProvider();
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const client = new AgentClient({ fetch, prompt, clock: svc.clock, idJag: async () => provider.mintIdJag() });

      const ready = (await client.authenticate({ url: svc.base })) as ReadyResult;
      expect(ready).toMatchObject({ status: 'ready', registration_type: 'identity_assertion', claimed: true, credential_type: 'access_token' });
      expect(ready.access_token).toMatch(/^at_/);
      expect(ready.expires_in).toBeGreaterThan(0);
      expect(ready.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      const registrations = () => sent.filter((r) => r.url === `${svc.base}/agent/auth`);
      expect(registrations().map((r) => r.body)).toEqual([
        { type: 'identity_assertion', assertion_type: 'urn:ietf:params:oauth:token-type:id-jag', assertion: expect.any(String), requested_credential_type: 'access_token' },
      ]);
      expect(prompt.shown).toEqual([]);
      expect(await statusOf(await client.fetch(api, notePost('via the provider')))).toBe(200);

      svc.clock.advance(2 * HOUR);
      expect(await statusOf(await client.fetch(api, notePost('later')))).toBe(200);
      expect(registrations()).toHaveLength(2);
      expect(registrations()[1]!.body.assertion).not.toBe(registrations()[0]!.body.assertion);
      const record = (await client.status())[svc.base]!;
      expect(record).toMatchObject({ registration_id: ready.registration_id, dialect: 'v0.1', credential: { type: 'access_token' } });
      expect(record.credential!.value).not.toBe(ready.access_token);
    },
    E2E_TIMEOUT,
  );

  it(
    'an expired access token with no way to get a fresh ID-JAG: reauthentication_required, saying why',
    async () => {
      const { provider, svc } = await v01WithProvider();
      const client = new AgentClient({ clock: svc.clock });
      expect(await client.authenticate({ url: svc.base, idJag: provider.mintIdJag() })).toMatchObject({ status: 'ready', credential_type: 'access_token' });
      svc.clock.advance(2 * HOUR);
      const refused = await rejectionOf(client.authenticate({ url: svc.base }));
      expect(refused.code).toBe('reauthentication_required');
      expect(refused.message).toMatch(/v0\.1 has no refresh.*email.*ID-JAG/);
    },
    E2E_TIMEOUT,
  );

  it(
    'an ID-JAG for a person who already has an account here (a first link): the account\'s owner reads back the emailed code',
    async () => {
      const { provider, svc, api } = await v01WithProvider();
      // Ada has an account: she claimed a registration by email before.
      const byEmail = await (await postJson(`${svc.base}/agent/auth`, { type: 'identity_assertion', assertion_type: 'verified_email', assertion: 'ada@example.com' })).json();
      const { code } = await claimEmail(svc.base, 'ada@example.com');
      expect((await postJson(`${svc.base}/agent/auth/claim/complete`, { claim_token: byEmail.claim_token, otp: code })).status).toBe(200);

      const client = new AgentClient({ clock: svc.clock, idJag: async () => provider.mintIdJag({ email: 'ada@example.com' }) });
      const claim = await client.authenticate({ url: svc.base });
      expect(claim).toMatchObject({ status: 'claim_required', handoff: { emailedTo: 'ada@example.com' } });
      const linkCode = (await claimEmail(svc.base, 'ada@example.com')).code;
      const ready = (await client.completeClaim(svc.base, linkCode)) as ReadyResult;
      expect(ready).toMatchObject({ status: 'ready', registration_type: 'identity_assertion', claimed: true, credential_type: 'access_token' });
      expect(await statusOf(await client.fetch(api, notePost('linked')))).toBe(200);
    },
    E2E_TIMEOUT,
  );
});
