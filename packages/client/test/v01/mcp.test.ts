import { describe, expect, it } from 'vitest';
import { afterTest } from '../../../../test-support/after-test.ts';
import { call, connect } from '../mcp/helpers.ts';
import { claimEmail, startV01Service, wrongCode } from './support.ts';

/**
 * issue 12: `authmd-mcp` (over stdio, driven by the MCP SDK's client) against a service that offers
 * only v0.1: an API key, then a claim by the code the service emails.
 */
describe('authmd-mcp against a v0.1-only service', () => {
  it('lists its tools, authenticates with an API key, and claims with the emailed code (a wrong one first)', { timeout: 90_000 }, async () => {
    const svc = await startV01Service({ clock: Date.now });
    const issuer = svc.base;
    const api = `${issuer}/api/notes`;
    const mcp = await connect();
    afterTest(() => mcp.close());

    const { tools } = await mcp.client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['authmd_authenticate', 'authmd_complete_claim', 'authmd_fetch']));
    expect(tools.find((tool) => tool.name === 'authmd_complete_claim')!.description).toContain('on a v0.1 service, the code in the email');
    expect(tools.find((tool) => tool.name === 'authmd_authenticate')!.description).toContain('emailed_to names the address');

    const anonymous = await call(mcp.client, 'authmd_authenticate', { issuer });
    expect(anonymous.isError, JSON.stringify(anonymous.value)).toBe(false);
    expect(anonymous.value).toMatchObject({ status: 'ready', token_type: 'Bearer', credential_type: 'api_key', expires_in: null, registration_type: 'anonymous', claimed: false });
    expect(anonymous.value.access_token).toMatch(/^sk_/);
    const read = await call(mcp.client, 'authmd_fetch', { issuer, url: api });
    expect(read.value.status).toBe(200);
    expect((await call(mcp.client, 'authmd_fetch', { issuer, url: api, method: 'POST', body: '{"text":"too early"}' })).value.status).toBe(403);

    const started = await call(mcp.client, 'authmd_authenticate', { issuer, email: 'ada@example.com' });
    expect(started.isError, JSON.stringify(started.value)).toBe(false);
    expect(started.value).toMatchObject({ status: 'claim_required', registration_id: anonymous.value.registration_id, verification_uri: 'mailto:ada@example.com', emailed_to: 'ada@example.com' });
    expect(started.value.instructions).toContain('emailed a 6-digit code to ada@example.com');
    expect(started.value.instructions).toContain('authmd_complete_claim');
    const { code } = await claimEmail(issuer, 'ada@example.com');

    const wrong = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: wrongCode(code) });
    expect(wrong.isError).toBe(true);
    expect(wrong.value).toMatchObject({ error: 'invalid_user_code', status: 401 });
    expect(wrong.value.message).toContain('not the code in the latest email');
    const claimed = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: code });
    expect(claimed.isError, JSON.stringify(claimed.value)).toBe(false);
    expect(claimed.value).toMatchObject({ status: 'ready', access_token: anonymous.value.access_token, credential_type: 'api_key', claimed: true });

    const write = await call(mcp.client, 'authmd_fetch', { issuer, url: api, method: 'POST', body: '{"text":"after the claim"}' });
    expect(write.isError, JSON.stringify(write.value)).toBe(false);
    expect(write.value.status).toBe(200);
    expect(mcp.transportErrors).toEqual([]);
  });
});
