import { describe, expect, it } from 'vitest';
import { ConfigError, createMemoryStore, createService, silentLogger, type ServiceOptions } from '@authmd/service';

/** The `admin` option refuses at start what could not work, naming the option and the fix. */

const TOKEN = 'a-token-of-at-least-thirty-two-characters';

function start(admin: ServiceOptions['admin']) {
  return createService({ issuer: 'http://127.0.0.1:1', scopes: { preClaim: [], postClaim: ['notes.read'] }, store: createMemoryStore(), logger: silentLogger, maintenanceIntervalSeconds: 0, admin });
}

describe('the admin option', () => {
  it.each([
    [{ apiTokens: [{ operator: 'ops', token: 'short' }] }, 'admin.apiTokens: the token of ops must be at least 32 characters'],
    [{ apiTokens: [{ operator: '', token: TOKEN }] }, 'admin.apiTokens: every token needs the operator it stands for'],
    [{ apiTokens: [{ operator: 'ops', token: TOKEN }, { operator: 'ops', token: `${TOKEN}2` }] }, 'admin.apiTokens: ops is listed twice'],
    [{ operators: ['not-an-address'] }, 'admin.operators: "not-an-address" is not an email address'],
    [{ operators: ['ops@example.com'], path: '/Admin/' }, 'admin.path: "/Admin/" must be a path such as /admin'],
    [{ operators: ['ops@example.com'], path: 'admin' }, 'admin.path: "admin" must be a path such as /admin'],
  ] as [ServiceOptions['admin'], string][])('refuses %j', async (admin, message) => {
    const refused = start(admin);
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(message);
  });

  it('is off with no operator and no token, and on at the path given otherwise', async () => {
    const off = await start({ operators: [], apiTokens: [] });
    const on = await start({ operators: ['Ops@Example.com'], path: '/ops/console' });
    const tokens = await start({ apiTokens: [{ operator: 'ops', token: TOKEN }] });
    try {
      expect(off.config.admin).toBeUndefined();
      expect(on.config.admin).toMatchObject({ path: '/ops/console', tokens: [] });
      expect([...on.config.admin!.operators]).toEqual(['ops@example.com']);
      const stored = tokens.config.admin!.tokens;
      expect(stored).toHaveLength(1);
      expect(JSON.stringify(stored)).not.toContain(TOKEN);
    } finally {
      await Promise.all([off.close(), on.close(), tokens.close()]);
    }
  });
});
