import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { runCli, runInProcess, startTestDemo, tempStore } from './support.ts';

/**
 * Anonymous registration through the CLI, against the real demo over HTTP. The first login and a
 * refused fetch run as the real process; the rest in this process (`run`, what bin/authmd.js calls).
 */
describe('authmd: anonymous login, fetch, status, logout', () => {
  let running: Awaited<ReturnType<typeof startTestDemo>>;
  let store: ReturnType<typeof tempStore>;
  let base: string;
  let api: string;
  const cli = (...args: string[]) => runInProcess(args, { store: store.path });
  const asProcess = (...args: string[]) => runCli(args, { store: store.path });

  beforeAll(async () => {
    running = await startTestDemo();
    base = running.demo.url;
    api = `${base}/api/notes`;
  });
  afterAll(() => running.close());
  beforeEach(() => {
    store = tempStore();
  });
  afterEach(() => store.remove());

  it('login registers anonymously (exit 0, no token printed) and status shows it', { timeout: 30_000 }, async () => {
    const login = await asProcess('login', base);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`Ready for ${base}`);
    expect(login.stdout).toMatch(/anonymous, not linked to a person/);
    expect(login.stdout).toContain('notes.read');
    expect(login.stderr).toContain(`authmd login ${base} --email`);
    const stored = JSON.parse(readFileSync(store.path, 'utf8'));
    const token = stored.issuers[base].access_token.value as string;
    expect(login.stdout + login.stderr).not.toContain(token);

    const status = await cli('status', '--json');
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout);
    expect(parsed.store).toBe(store.path);
    expect(parsed.registrations).toEqual([
      expect.objectContaining({ issuer: base, registration_type: 'anonymous', claimed: false, scope: 'notes.read', assertion_expires_at: expect.any(String), access_token_expires_at: expect.any(String) }),
    ]);
    expect(status.stdout).not.toContain(token);
    expect(status.stdout).not.toContain(stored.issuers[base].identity.assertion);

    const text = await cli('status');
    expect(text.stdout).toContain(base);
    expect(text.stdout).toMatch(/assertion\s+expires 20\d\d-/);
    expect(text.stdout).not.toContain(token);
  });

  it('login --json prints one JSON object, the token only with --show-token', { timeout: 30_000 }, async () => {
    const plain = await cli('login', api, '--json');
    expect(plain.code, plain.stderr).toBe(0);
    const ready = JSON.parse(plain.stdout);
    expect(ready).toMatchObject({ status: 'ready', issuer: base, registration_type: 'anonymous', claimed: false, token_type: 'Bearer', scope: 'notes.read' });
    expect(ready).not.toHaveProperty('access_token');

    const shown = JSON.parse((await cli('login', base, '--json', '--show-token')).stdout);
    const stored = JSON.parse(readFileSync(store.path, 'utf8'));
    expect(shown.access_token).toBe(stored.issuers[base].access_token.value);
    expect(shown.registration_id).toBe(ready.registration_id); // reused, not registered again
  });

  it('fetch prints the body (200 → exit 0); -i adds the headers; --json parses', { timeout: 30_000 }, async () => {
    const fetched = await cli('fetch', api);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout)).toEqual({ notes: [] });

    const [included, json] = await Promise.all([cli('fetch', api, '-i'), cli('fetch', api, '--json')]);
    expect(included.code).toBe(0);
    expect(included.stdout).toMatch(/^HTTP 200 OK\r\n/);
    expect(included.stdout.toLowerCase()).toContain('content-type: application/json');
    expect(included.stdout).toMatch(/\r\n\r\n\{"notes":\[\]\}$/);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 200, headers: { 'content-type': 'application/json' }, body: { notes: [] } });
  });

  it('fetch -X POST before a claim → exit 1 with the 403 shown', { timeout: 30_000 }, async () => {
    const posted = await asProcess('fetch', '-X', 'POST', '-H', 'Content-Type: application/json', '-d', '{"text":"hello"}', api);
    expect(posted.code).toBe(1);
    expect(JSON.parse(posted.stdout)).toMatchObject({ error: 'insufficient_scope' });
    expect(posted.stderr).toMatch(/POST .* answered 403 Forbidden\. The agent's credentials lack the scope \(notes\.write\)/);
    expect(posted.stderr).toContain(`authmd login ${base} --email`);
  });

  it('logout revokes: status is empty and the old token is refused by the API', { timeout: 30_000 }, async () => {
    expect((await cli('login', base)).code).toBe(0);
    const token = JSON.parse(readFileSync(store.path, 'utf8')).issuers[base].access_token.value as string;
    expect((await fetch(api, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

    const logout = await cli('logout', base);
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toContain(`Logged out of ${base}`);
    expect(JSON.parse((await cli('status', '--json')).stdout).registrations).toEqual([]);
    expect((await fetch(api, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);

    const again = await cli('logout', base, '--json');
    expect(JSON.parse(again.stdout)).toEqual({ status: 'not_stored', issuer: base, revoked: false });
  });

  it('logout --local forgets without contacting the service', { timeout: 30_000 }, async () => {
    expect((await cli('login', base)).code).toBe(0);
    const logout = await cli('logout', api, '--local', '--json');
    expect(JSON.parse(logout.stdout)).toEqual({ status: 'logged_out', issuer: base, revoked: false });
    expect(JSON.parse((await cli('status', '--json')).stdout).registrations).toEqual([]);
  });
});
