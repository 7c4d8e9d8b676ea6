import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connect, demo, Human, type Connected } from './helpers.ts';

/**
 * The type-in direction through the MCP server, with the user's email from AUTHMD_EMAIL: a
 * service_auth registration, the human types the agent's code on the page, and the agent learns the
 * outcome with authmd_wait_for_claim (there is nothing to read back in this direction).
 */
describe('authmd-mcp: service_auth by AUTHMD_EMAIL, type-in direction', () => {
  let service: Awaited<ReturnType<typeof demo>>;
  let mcp: Connected;
  let issuer: string;
  let api: string;
  let claim: any;

  beforeAll(async () => {
    service = await demo();
    issuer = service.demo.url;
    api = `${issuer}/api/notes`;
    mcp = await connect({ AUTHMD_EMAIL: 'grace@example.com' });
  }, 30_000);

  afterAll(async () => {
    await mcp?.close();
    await service?.close();
  });

  it('authenticate without an email argument registers by the configured email: claim_required with a code to type', async () => {
    const started = await call(mcp.client, 'authmd_authenticate', { issuer });
    expect(started.isError, JSON.stringify(started.value)).toBe(false);
    claim = started.value;
    expect(claim).toMatchObject({ status: 'claim_required', registration_id: expect.any(String), verification_uri: expect.any(String), attempt_expires_at: expect.any(String) });
    expect(claim.user_code).toMatch(/^\d{6}$/);
    expect(claim.instructions).toContain(claim.user_code);
    expect(claim.instructions).toContain('authmd_wait_for_claim');
  }, 30_000);

  it('authmd_fetch while the user confirms is a claim_required tool error with the same link (no new registration)', async () => {
    const attempt = await call(mcp.client, 'authmd_fetch', { issuer, url: api });
    expect(attempt.isError).toBe(true);
    expect(attempt.value).toMatchObject({ error: 'claim_required', status: 401, message: expect.stringContaining(claim.verification_uri) });
    expect(attempt.value).toMatchObject({ registration_id: claim.registration_id, verification_uri: claim.verification_uri, user_code: claim.user_code });
  }, 30_000);

  it('authmd_wait_for_claim answers claim_pending when its time is up', async () => {
    const pending = await call(mcp.client, 'authmd_wait_for_claim', { issuer, timeout_seconds: 1 });
    expect(pending.isError, JSON.stringify(pending.value)).toBe(false);
    expect(pending.value).toMatchObject({ status: 'claim_pending', registration_id: claim.registration_id, verification_uri: claim.verification_uri, user_code: claim.user_code });
  }, 30_000);

  it('the human types the code; authmd_wait_for_claim → ready and claimed; the API accepts a write', async () => {
    const human = new Human(issuer, 'grace@example.com');
    await human.typeAgentCode(await human.openClaimLink(claim.verification_uri), claim.user_code);

    const done = await call(mcp.client, 'authmd_wait_for_claim', { issuer, timeout_seconds: 20 });
    expect(done.isError, JSON.stringify(done.value)).toBe(false);
    expect(done.value).toMatchObject({ status: 'ready', token_type: 'Bearer', claimed: true, registration_type: 'service_auth', registration_id: claim.registration_id });

    const created = await call(mcp.client, 'authmd_fetch', { issuer, url: api, method: 'POST', body: JSON.stringify({ text: 'typed in' }) });
    expect(created.isError, JSON.stringify(created.value)).toBe(false);
    expect(created.value.status).toBe(201);
  }, 30_000);

  it('after the claim, waiting again answers the stored credentials; complete_claim has nothing to complete', async () => {
    const again = await call(mcp.client, 'authmd_wait_for_claim', { issuer });
    expect(again.value).toMatchObject({ status: 'ready', claimed: true });
    const none = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: '123456' });
    expect(none.isError).toBe(true);
    expect(none.value).toMatchObject({ error: 'no_pending_claim', status: null });
    expect(mcp.transportErrors).toEqual([]);
  }, 30_000);
});
