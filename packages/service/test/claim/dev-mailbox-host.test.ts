import { describe, expect, it } from 'vitest';
import { createMemoryStore, createService, silentLogger } from '@authmd/service';
import { registerAnonymous, servicePerTest } from '../support/harness.ts';
import { rawRequest } from '../support/issuer-server.ts';

/**
 * The development outbox holds sign-in codes. With DNS rebinding, a web page on evil.example whose
 * name now resolves to 127.0.0.1 can make the browser fetch `/dev/mailbox.json` from the service
 * "same-origin" and read it; the request then carries `Host: evil.example`. The outbox pages answer
 * only their own Host (the issuer's host:port, plus `mail.hosts`) and refuse others with 421 (issue 10).
 */

const start = servicePerTest();

const foreign = ['evil.example', 'evil.example:8787', 'EVIL.example', '127.0.0.1.evil.example', 'evil.example@127.0.0.1', '127.0.0.1:1'];

describe('the development outbox and the Host header', () => {
  it.each(['/dev/mailbox.json', '/dev/mailbox'])('%s refuses a foreign Host with 421 and answers its own', async (path) => {
    const { base } = await start();
    const own = new URL(base).host;
    for (const host of [...foreign, own.replace('127.0.0.1', 'evil.example')]) {
      const refused = await rawRequest(base + path, { headers: { host } });
      expect(refused.status, `Host: ${host}`).toBe(421);
      expect(refused.body, `Host: ${host}`).not.toContain('messages');
      expect(refused.body, `Host: ${host}`).toContain(`answers only at ${own}`);
      if (path.endsWith('.json')) expect(JSON.parse(refused.body).error).toBe('misdirected_request');
    }
    const answered = await rawRequest(base + path, { headers: { host: own } });
    expect(answered.status).toBe(200);
    // the same name in capitals is the same host
    expect((await rawRequest(base + path, { headers: { host: own.toUpperCase() } })).status).toBe(200);
    // only the outbox checks the Host: the protocol's endpoints still answer a foreign one
    const discovery = await rawRequest(`${base}/.well-known/oauth-authorization-server`, { headers: { host: 'evil.example' } });
    expect(discovery.status).toBe(200);
    expect(await registerAnonymous(base)).toHaveProperty('identity');
  });

  it('mail.hosts names other Host values the outbox answers (the address behind a proxy)', async () => {
    const { base } = await start({ mail: { outbox: true, hosts: ['proxy.test:8080'] } });
    expect((await rawRequest(`${base}/dev/mailbox.json`, { headers: { host: 'proxy.test:8080' } })).status).toBe(200);
    expect((await rawRequest(`${base}/dev/mailbox.json`, { headers: { host: new URL(base).host } })).status).toBe(200);
    expect((await rawRequest(`${base}/dev/mailbox.json`, { headers: { host: 'proxy.test:8081' } })).status).toBe(421);
  });

  it('a mail.hosts entry that is not a host[:port] is a configuration error', async () => {
    await expect(
      createService({
        issuer: 'http://127.0.0.1:9',
        scopes: { preClaim: ['a'], postClaim: ['a'] },
        store: createMemoryStore(),
        logger: silentLogger,
        maintenanceIntervalSeconds: 0,
        mail: { outbox: true, hosts: ['http://proxy.test/'] },
      }),
    ).rejects.toThrow(/mail\.hosts/);
  });
});
