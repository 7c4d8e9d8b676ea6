import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { afterTest } from '../../../../test-support/after-test.ts';
import { callApi } from '../../../service/test/support/harness.ts';
import { CliProcess, runCli, runInProcess, tempStore } from '../cli/support.ts';
import { claimEmail, startV01Service, wrongCode } from './support.ts';

/**
 * issue 12: `authmd` against a service that offers only v0.1: the logins as the real binary in its own
 * process, the commands after them in this process (`run`, what the binary calls). The service runs on
 * real time here, as the CLI does.
 */
describe('authmd against a v0.1-only service', () => {
  const live: CliProcess[] = [];
  afterEach(() => {
    for (const cli of live.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
  });
  const storeForTest = () => {
    const store = tempStore();
    afterTest(() => store.remove());
    return store;
  };

  it('login anonymously → an API key; fetch reads with it; status shows the dialect and the credential type', { timeout: 90_000 }, async () => {
    const svc = await startV01Service({ clock: Date.now });
    const store = storeForTest();
    const login = await runCli(['login', svc.base], { store: store.path });
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain(`Ready for ${svc.base}`);
    expect(login.stdout).toMatch(/anonymous, not linked to a person/);
    expect(login.stdout).toMatch(/credential\s+API key \(dialect v0\.1\), never expires/);
    const key = JSON.parse(readFileSync(store.path, 'utf8')).issuers[svc.base].credential.value as string;
    expect(login.stdout + login.stderr).not.toContain(key);

    const fetched = await runInProcess(['fetch', `${svc.base}/api/notes`], { store: store.path });
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout).principal).toMatchObject({ scopes: ['notes.read'] });

    const status = JSON.parse((await runInProcess(['status', '--json'], { store: store.path })).stdout);
    expect(status.registrations).toEqual([
      expect.objectContaining({ issuer: svc.base, registration_type: 'anonymous', claimed: false, dialect: 'v0.1', credential_type: 'api_key', credential_expires_at: null, scope: 'notes.read' }),
    ]);
    const text = await runInProcess(['status'], { store: store.path });
    expect(text.stdout).toMatch(/dialect\s+v0\.1 \(credential: api_key\)/);
    expect(text.stdout).toMatch(/API key\s+does not expire/);
    expect(text.stdout).not.toContain(key);
  });

  it('login --email: the person types the emailed code (a wrong one first); then a write works; logout revokes the key', { timeout: 90_000 }, async () => {
    const svc = await startV01Service({ clock: Date.now });
    const store = storeForTest();
    const cli = new CliProcess(['login', svc.base, '--email', 'ada@example.com'], { store: store.path });
    live.push(cli);
    await cli.waitFor(/emailed a 6-digit code to ada@example\.com/);
    await cli.waitFor(/type the code it contains here/);
    expect(cli.stderr).not.toMatch(/Open this link/);
    const { code } = await claimEmail(svc.base, 'ada@example.com');

    cli.type(`${wrongCode(code)}\n`);
    await cli.waitFor(/not the code in the latest email to ada@example\.com \(4 tries left\).*Type the code again/);
    cli.type(`${code}\n`);
    const done = await cli.done;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/service_auth, linked to a person/);
    expect(done.stdout).toMatch(/credential\s+API key \(dialect v0\.1\)/);

    const written = await runInProcess(['fetch', `${svc.base}/api/notes`, '-d', '{"text":"from the CLI"}'], { store: store.path });
    expect(written.code, written.stderr).toBe(0);
    expect(JSON.parse(written.stdout).principal.scopes.sort()).toEqual(['notes.read', 'notes.write']);
    const status = JSON.parse((await runInProcess(['status', '--json'], { store: store.path })).stdout);
    expect(status.registrations[0]).toMatchObject({ dialect: 'v0.1', credential_type: 'api_key', claimed: true });

    const key = JSON.parse(readFileSync(store.path, 'utf8')).issuers[svc.base].credential.value as string;
    const logout = await runInProcess(['logout', svc.base], { store: store.path });
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toContain(`Logged out of ${svc.base}`);
    expect((await callApi(svc.base, key)).status).toBe(401);
    expect(JSON.parse((await runInProcess(['status', '--json'], { store: store.path })).stdout).registrations).toEqual([]);
  });
});
