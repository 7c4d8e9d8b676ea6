import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connect, demo, Human, type Connected } from './helpers.ts';

/**
 * The MCP server through the SDK's own client over stdio (`node bin/authmd-mcp.js`), against the
 * demo on ephemeral ports: anonymous → API, then a claim by email in the read-back direction, with
 * the human played over HTTP.
 */
describe('authmd-mcp over stdio', () => {
  let service: Awaited<ReturnType<typeof demo>>;
  let mcp: Connected;
  let issuer: string;
  let api: string;
  const tokens: string[] = [];

  beforeAll(async () => {
    service = await demo();
    issuer = service.demo.url;
    api = `${issuer}/api/notes`;
    mcp = await connect();
  }, 30_000);

  afterAll(async () => {
    await mcp?.close();
    await service?.close();
  });

  it('lists the official tools with their argument names', async () => {
    const { tools } = await mcp.client.listTools();
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    expect([...byName.keys()]).toEqual(expect.arrayContaining(['authmd_authenticate', 'authmd_complete_claim', 'authmd_fetch']));
    const shape = (name: string) => {
      const schema = byName.get(name)!.inputSchema;
      return { properties: Object.keys(schema.properties ?? {}).sort(), required: [...(schema.required ?? [])].sort() };
    };
    expect(shape('authmd_authenticate')).toEqual({ properties: ['email', 'force_reregister', 'id_jag', 'issuer', 'resource'], required: ['issuer'] });
    expect(shape('authmd_complete_claim')).toEqual({ properties: ['issuer', 'resource', 'user_code'], required: ['issuer', 'user_code'] });
    expect(shape('authmd_fetch')).toEqual({ properties: ['body', 'headers', 'issuer', 'method', 'resource', 'url'], required: ['issuer', 'url'] });
    const props = (name: string) => byName.get(name)!.inputSchema.properties as Record<string, { type?: string }>;
    expect(props('authmd_authenticate')['force_reregister']?.type).toBe('boolean');
    expect(props('authmd_fetch')['headers']?.type).toBe('object');
    for (const tool of byName.values()) expect(tool.description?.length, tool.name).toBeGreaterThan(80);
    expect(byName.get('authmd_authenticate')!.description).toContain('authmd_complete_claim');
    expect(mcp.client.getServerVersion()?.name).toBe('@authmd/client');
  }, 30_000);

  it('authenticates anonymously: ready', async () => {
    const { isError, value } = await call(mcp.client, 'authmd_authenticate', { issuer });
    expect(isError, JSON.stringify(value)).toBe(false);
    expect(value).toMatchObject({ status: 'ready', token_type: 'Bearer', registration_type: 'anonymous', claimed: false });
    expect(value.access_token).toEqual(expect.any(String));
    expect(value.expires_in).toBeGreaterThan(0);
    expect(value.registration_id).toEqual(expect.any(String));
    expect(Object.keys(value).sort()).toEqual(['access_token', 'claimed', 'expires_in', 'registration_id', 'registration_type', 'scope', 'status', 'token_type']);
    tokens.push(value.access_token);
  }, 30_000);

  it('fetches the API with the token: status, headers and the body as text', async () => {
    const { isError, value } = await call(mcp.client, 'authmd_fetch', { issuer, url: api });
    expect(isError, JSON.stringify(value)).toBe(false);
    expect(value.status).toBe(200);
    expect(value.headers['content-type']).toContain('application/json');
    expect(typeof value.body).toBe('string');
    expect(JSON.parse(value.body)).toEqual({ notes: [] });

    // Writing needs a claimed registration: the API's 403 is a result, not a tool error.
    const write = await call(mcp.client, 'authmd_fetch', { issuer, url: api, method: 'POST', body: '{"text":"too early"}' });
    expect(write.isError).toBe(false);
    expect(write.value.status).toBe(403);
  }, 30_000);

  it('claims by email (read-back): claim_required, the human authorizes, complete_claim with the page code → claimed', async () => {
    const started = await call(mcp.client, 'authmd_authenticate', { issuer, email: 'ada@example.com' });
    expect(started.isError, JSON.stringify(started.value)).toBe(false);
    const claim = started.value;
    expect(claim).toMatchObject({ status: 'claim_required', registration_id: expect.any(String), attempt_expires_at: expect.any(String), instructions: expect.any(String) });
    expect(claim.verification_uri.startsWith(`${issuer}/`)).toBe(true);
    expect(claim.instructions).toContain(claim.verification_uri);
    expect(claim.instructions).toContain('authmd_complete_claim');
    expect(claim).not.toHaveProperty('handoff');

    const human = new Human(issuer, 'ada@example.com');
    const page = await human.openClaimLink(claim.verification_uri);
    const code = await human.authorize(page);

    // A wrong code is a tool error with the official JSON; the right one still works after it.
    const wrong = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: code === '000000' ? '111111' : '000000' });
    expect(wrong.isError).toBe(true);
    expect(wrong.value).toEqual({ error: 'invalid_user_code', message: expect.any(String), status: expect.any(Number) });
    expect(wrong.value.status).toBeGreaterThanOrEqual(400);
    expect(wrong.value.message).toMatch(/tries? left/);

    const done = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: code });
    expect(done.isError, JSON.stringify(done.value)).toBe(false);
    expect(done.value).toMatchObject({ status: 'ready', token_type: 'Bearer', claimed: true, registration_id: claim.registration_id, registration_type: 'anonymous' });
    expect(done.value.scope.split(' ')).toContain('notes.write');
    tokens.push(done.value.access_token);
  }, 30_000);

  it('posts a note with the claimed credentials: 201', async () => {
    const created = await call(mcp.client, 'authmd_fetch', { issuer, url: api, method: 'post', headers: { 'x-request-note': 'mcp' }, body: JSON.stringify({ text: 'from MCP' }) });
    expect(created.isError, JSON.stringify(created.value)).toBe(false);
    expect(created.value.status).toBe(201);
    const listed = await call(mcp.client, 'authmd_fetch', { issuer, url: api });
    expect(listed.value.status).toBe(200);
    expect(listed.value.body).toContain('from MCP');
  }, 30_000);

  it('stores the claimed registration in AUTHMD_STORE_PATH, without the claim token', async () => {
    const file = JSON.parse(readFileSync(mcp.storePath, 'utf8'));
    expect(file.version).toBe(1);
    expect(file.issuers[issuer]).toMatchObject({ registration_type: 'anonymous', claimed: true });
    expect(JSON.stringify(file)).not.toMatch(/claim_token|"claim"/);
  }, 30_000);

  it('reports failures as tool errors with JSON {error, message, status}', async () => {
    const noClaim = await call(mcp.client, 'authmd_complete_claim', { issuer, user_code: '123456' });
    expect(noClaim.isError).toBe(true);
    expect(noClaim.value).toEqual({ error: 'no_pending_claim', message: expect.stringContaining('Authenticate again'), status: null });

    const badUrl = await call(mcp.client, 'authmd_fetch', { issuer, url: 'notes' });
    expect(badUrl.isError).toBe(true);
    expect(badUrl.value).toEqual({ error: 'invalid_request', message: expect.stringContaining('absolute URL'), status: null });

    // A web server that is not an auth.md service: discovery fails with the HTTP status.
    const plain = createServer((_, res) => res.writeHead(404, { 'content-type': 'text/plain' }).end('not found'));
    await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
    try {
      const notAuthmd = await call(mcp.client, 'authmd_authenticate', { issuer: `http://127.0.0.1:${(plain.address() as AddressInfo).port}` });
      expect(notAuthmd.isError).toBe(true);
      expect(notAuthmd.value).toEqual({ error: 'discovery_failed', message: expect.any(String), status: 404 });
    } finally {
      await new Promise((done) => plain.close(done));
    }
  }, 30_000);

  it('an unreachable issuer is a network_error tool error', async () => {
    const unreachable = await call(mcp.client, 'authmd_authenticate', { issuer: 'http://127.0.0.1:9' });
    expect(unreachable.isError).toBe(true);
    expect(unreachable.value).toEqual({ error: 'network_error', message: expect.stringContaining('could not reach'), status: null });
  }, 30_000);

  it('kept stdout to the protocol and secrets out of stderr', () => {
    expect(mcp.transportErrors).toEqual([]);
    const stderr = mcp.stderr();
    expect(stderr).toContain('authmd-mcp: ready on stdio');
    expect(stderr).toContain('authmd_complete_claim');
    expect(tokens.length).toBe(2);
    for (const token of tokens) expect(stderr).not.toContain(token);
    expect(stderr).not.toContain('/claim?token=');
  });
});
