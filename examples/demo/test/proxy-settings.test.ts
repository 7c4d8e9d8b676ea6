import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { readSettings } from '../src/settings.ts';
import { startDemo } from '../src/start.ts';

/** AUTHMD_TRUST_PROXY and AUTHMD_PROXY_HEADER for `npm start` (issue 14: configuration from the environment, client IP). */

function settings(env: NodeJS.ProcessEnv) {
  return readSettings(env, '/srv/app');
}

function refusal(env: NodeJS.ProcessEnv): string {
  const outcome = settings(env);
  if (outcome.ok) throw new Error(`expected ${JSON.stringify(env)} to be refused`);
  return outcome.message;
}

describe('reading the variables', () => {
  it('unset or 0: no proxy; a number: that many; a list: the addresses and ranges, trimmed; the header in any case', () => {
    const unset = settings({});
    expect(unset.ok && 'trustProxy' in unset.settings).toBe(false);
    expect(settings({ AUTHMD_TRUST_PROXY: '0' })).toMatchObject({ ok: true, settings: { trustProxy: 0 } });
    expect(settings({ AUTHMD_TRUST_PROXY: '2' })).toMatchObject({ ok: true, settings: { trustProxy: 2 } });
    expect(settings({ AUTHMD_TRUST_PROXY: ' 10.0.0.0/8, 192.0.2.10 ,2001:db8::/32', AUTHMD_PROXY_HEADER: 'Forwarded' })).toMatchObject({
      ok: true,
      settings: { trustProxy: ['10.0.0.0/8', '192.0.2.10', '2001:db8::/32'], proxyHeader: 'forwarded' },
    });
  });

  it.each([
    [{ AUTHMD_TRUST_PROXY: 'yes' }, /^AUTHMD_TRUST_PROXY: "yes" is not an IP address or CIDR range/],
    [{ AUTHMD_TRUST_PROXY: '33' }, /^AUTHMD_TRUST_PROXY: 33 is not a number of proxies/],
    [{ AUTHMD_TRUST_PROXY: '10.0.0.0/40' }, /^AUTHMD_TRUST_PROXY: "10.0.0.0\/40" is not an IP address or CIDR range/],
    [{ AUTHMD_TRUST_PROXY: '10.0.0.1,,10.0.0.2' }, /^AUTHMD_TRUST_PROXY: "" is not an IP address/],
    [{ AUTHMD_TRUST_PROXY: '1', AUTHMD_PROXY_HEADER: 'x-real-ip' }, /^AUTHMD_PROXY_HEADER: "x-real-ip" is not one of x-forwarded-for, forwarded/],
    [{ AUTHMD_PROXY_HEADER: 'forwarded' }, /^AUTHMD_PROXY_HEADER is set but AUTHMD_TRUST_PROXY is not/],
  ])('refuses %j naming the variable and showing an example', (env, message) => {
    const said = refusal(env);
    expect(said).toMatch(message);
    expect(said).toMatch(/Example: AUTHMD_TRUST_PROXY=1 .*AUTHMD_TRUST_PROXY=10\.0\.0\.0\/8,192\.0\.2\.10/);
  });
});

describe('the demo behind one proxy', () => {
  it('counts the address X-Forwarded-For names in its per-IP registration limit', async () => {
    const demo = await startDemo({
      port: 0,
      dataDir: join(mkdtempSync(join(tmpdir(), 'authmd-proxy-')), 'data'),
      store: 'memory',
      trustProxy: 1,
      rateLimits: { anonymous: { perIp: 1, perService: 100 } },
    });
    onTestFinished(() => demo.close());
    const register = (forwardedFor: string) =>
      fetch(`${demo.url}/agent/identity`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
        body: JSON.stringify({ type: 'anonymous' }),
      });
    expect((await register('203.0.113.1')).status).toBe(200);
    expect((await register('203.0.113.1')).status).toBe(429);
    expect((await register('203.0.113.2')).status).toBe(200);
  });
});
