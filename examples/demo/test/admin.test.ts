import { describe, expect, it } from 'vitest';
import { tempDirs } from '../../../test-support/temp-dirs.ts';
import { DEFAULT_OPERATOR, readAdminSettings } from '../src/admin-settings.ts';
import { startMain, waitFor } from './npm-start.ts';

/** `npm start` serves the operator's console at /admin and the admin API (issue 15), configured from the environment. */

const TOKEN = 'demo-admin-token-0123456789abcdefghijklmnop';
const tempDir = tempDirs('authmd-demo-admin-');

describe('the demo\'s console and admin API', () => {
  it('npm start names the console; /admin sends a stranger to sign in; the admin API answers the configured token', { timeout: 60_000 }, async () => {
    const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_OPERATORS: 'ops@example.com', AUTHMD_ADMIN_TOKEN: TOKEN });
    try {
      const [, url] = await waitFor(() => /Operator console at (http:\/\/127\.0\.0\.1:\d+)\/admin for ops@example\.com/.exec(main.output().stdout), main.exited, 'console line');
      const console = await fetch(`${url}/admin`, { redirect: 'manual' });
      expect(console.status).toBe(303);
      expect(console.headers.get('location')).toBe('/login?return_to=%2Fadmin');

      const registered = await fetch(`${url}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' });
      const { id } = (await registered.json()) as { id: string };
      const listed = await fetch(`${url}/admin/api/registrations`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(listed.status).toBe(200);
      expect(((await listed.json()) as { registrations: { id: string }[] }).registrations.map((r) => r.id)).toContain(id);
      expect((await fetch(`${url}/admin/api/registrations`)).status).toBe(401);
    } finally {
      main.child.kill('SIGTERM');
      await main.exited;
    }
  });

  it('reads AUTHMD_OPERATORS and AUTHMD_ADMIN_TOKEN, with a default operator and refusals that say what to set', () => {
    expect(readAdminSettings({})).toEqual({ ok: true, admin: { operators: [DEFAULT_OPERATOR] } });
    expect(readAdminSettings({ AUTHMD_OPERATORS: ' a@example.com , b@example.com ', AUTHMD_ADMIN_TOKEN: TOKEN })).toEqual({
      ok: true,
      admin: { operators: ['a@example.com', 'b@example.com'], apiTokens: [{ operator: 'admin-token', token: TOKEN }] },
    });
    const badAddress = readAdminSettings({ AUTHMD_OPERATORS: 'ops' });
    expect(badAddress).toMatchObject({ ok: false, message: expect.stringContaining('AUTHMD_OPERATORS must be email addresses') });
    const shortToken = readAdminSettings({ AUTHMD_ADMIN_TOKEN: 'short-secret' });
    expect(shortToken).toMatchObject({ ok: false, message: expect.stringContaining('AUTHMD_ADMIN_TOKEN must be at least 32 characters') });
    expect(JSON.stringify(shortToken)).not.toContain('short-secret');
  });
});
