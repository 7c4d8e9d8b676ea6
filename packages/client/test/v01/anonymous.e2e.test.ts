import { describe, expect, it } from 'vitest';
import { AgentClient, type ClaimRequiredResult, type ReadyResult } from '../../src/index.ts';
import { callApi } from '../../../service/test/support/harness.ts';
import { E2E_TIMEOUT, notePost, recordingFetch, recordingPrompt, rejectionOf, statusOf } from '../e2e/support.ts';
import { claimEmail, startV01Service } from './support.ts';

/** issue 12: the SDK against a service that offers only v0.1: an API key at once, then a claim by email. */
describe('v0.1 anonymous registration', () => {
  it(
    'gets an API key that works at once; a claim by email upgrades the same key, so a write succeeds afterwards',
    async () => {
      const svc = await startV01Service();
      const api = `${svc.base}/api/notes`;
      const { fetch, sent } = recordingFetch();
      const prompt = recordingPrompt();
      const client = new AgentClient({ fetch, prompt, clock: svc.clock });

      expect((await client.discover(svc.base)).dialect).toBe('v0.1');
      const ready = (await client.authenticate({ url: svc.base })) as ReadyResult;
      expect(ready).toMatchObject({ status: 'ready', token_type: 'Bearer', credential_type: 'api_key', expires_in: null, registration_type: 'anonymous', claimed: false, scope: 'notes.read' });
      expect(ready.access_token).toMatch(/^sk_/);
      expect(sent.filter((r) => r.url === `${svc.base}/agent/auth`).map((r) => r.body)).toEqual([{ type: 'anonymous', requested_credential_type: 'api_key' }]);
      expect(sent.some((r) => r.url.includes('/agent/identity') || r.url.endsWith('/oauth2/token'))).toBe(false);

      expect(await statusOf(await client.fetch(api))).toBe(200);
      expect(sent.at(-1)!.authorization).toBe(`Bearer ${ready.access_token}`);
      expect(await statusOf(await client.fetch(api, notePost('too early')))).toBe(403);

      const claim = (await client.authenticate({ url: svc.base, email: 'ada@example.com' })) as ClaimRequiredResult;
      expect(claim).toMatchObject({ status: 'claim_required', registration_id: ready.registration_id, verification_uri: 'mailto:ada@example.com' });
      expect(claim.handoff).toMatchObject({ emailedTo: 'ada@example.com', readBack: true });
      expect(claim.handoff.userCode).toBeUndefined();
      expect(claim.instructions).toContain('emailed a 6-digit code to ada@example.com');
      expect(prompt.shown).toEqual([claim.handoff]);
      expect(sent.filter((r) => r.url === `${svc.base}/agent/auth/claim`).map((r) => r.body)).toEqual([{ claim_token: expect.stringMatching(/^clm_/), email: 'ada@example.com' }]);
      // The key keeps working while the person reads their email.
      expect(await statusOf(await client.fetch(api))).toBe(200);

      const { code } = await claimEmail(svc.base, 'ada@example.com');
      const claimed = await client.completeClaim(svc.base, code);
      expect(claimed).toMatchObject({ status: 'ready', access_token: ready.access_token, credential_type: 'api_key', expires_in: null, registration_id: ready.registration_id, claimed: true });
      expect(claimed.scope?.split(' ').sort()).toEqual(['notes.read', 'notes.write']);
      expect(await statusOf(await client.fetch(api, notePost('after the claim')))).toBe(200);
      expect((await client.status())[svc.base]).toEqual({
        registration_id: ready.registration_id,
        registration_type: 'anonymous',
        claimed: true,
        dialect: 'v0.1',
        credential: { type: 'api_key', value: ready.access_token, expires_at: null, scope: 'notes.read notes.write' },
      });
    },
    E2E_TIMEOUT,
  );

  it(
    'an API key the service revoked: the 401 drops it and the client registers anew, once',
    async () => {
      const svc = await startV01Service();
      const { fetch, sent } = recordingFetch();
      const client = new AgentClient({ fetch, clock: svc.clock });
      const first = (await client.authenticate({ url: svc.base })) as ReadyResult;
      expect(await svc.service.revokeRegistration(first.registration_id)).toBe(true);
      expect((await callApi(svc.base, first.access_token)).status).toBe(401);

      expect(await statusOf(await client.fetch(`${svc.base}/api/notes`))).toBe(200);
      const record = (await client.status())[svc.base]!;
      expect(record.registration_id).not.toBe(first.registration_id);
      expect(record.credential?.value).not.toBe(first.access_token);
      expect(sent.filter((r) => r.url === `${svc.base}/agent/auth`)).toHaveLength(2);
    },
    E2E_TIMEOUT,
  );

  it(
    'rate_limited: the error carries retry_after and says when to try again',
    async () => {
      const svc = await startV01Service({ rateLimits: { anonymous: { perIp: 1, perService: 100 } } });
      expect((await new AgentClient({ clock: svc.clock }).authenticate({ url: svc.base })).status).toBe('ready');
      const refused = await rejectionOf(new AgentClient({ clock: svc.clock }).authenticate({ url: svc.base }));
      expect(refused).toMatchObject({ code: 'rate_limited', status: 429 });
      expect(refused.details.retryAfterSeconds).toBeGreaterThan(0);
      expect(refused.message).toMatch(/Retry after \d+ s/);
    },
    E2E_TIMEOUT,
  );
});
