import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, createMemoryStore, createService, type Logger, type ServiceOptions } from '@authmd/service';
import { localKeyEncryptionKey } from '@authmd/service/keys';

/**
 * Settings fit for development only (docs/production.md, "What the service refuses to start with"):
 * a warning naming the fix, and with NODE_ENV=production a refusal to start.
 */

const savedEnv = process.env.NODE_ENV;
afterEach(() => {
  process.env.NODE_ENV = savedEnv;
});

function capturingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: { info() {}, warn: (message) => void warnings.push(message), error() {} }, warnings };
}

/** A production-fit configuration, but for `change`. */
function options(logger: Logger, change: Partial<ServiceOptions> = {}): ServiceOptions {
  return {
    issuer: 'https://notes.example.com',
    scopes: { preClaim: ['notes.read'], postClaim: ['notes.read'] },
    store: createMemoryStore(),
    logger,
    maintenanceIntervalSeconds: 0,
    keyEncryption: { keys: [localKeyEncryptionKey(Buffer.alloc(32, 7))] },
    mail: { mailer: { send: async () => {} } },
    ...change,
  };
}

const unsafe: [string, (o: ServiceOptions) => ServiceOptions, RegExp][] = [
  ['no store', ({ store: _store, ...rest }) => rest, /^store: none configured, so the in-memory store is used.*Configure SQLite or PostgreSQL/],
  ['the development mailbox', ({ mail: _mail, ...rest }) => rest, /^mail: sign-in and claim codes go to the development outbox at \/dev\/mailbox.*Configure an SMTP server/],
  ['a plain http issuer on a public host', (o) => ({ ...o, issuer: 'http://notes.example.com' }), /^issuer: http:\/\/notes\.example\.com is plain http on a non-loopback host.*Serve it over https/],
  [
    'trust.allowLoopback',
    (o) => ({ ...o, trust: { issuers: [{ issuer: 'https://provider.example', displayName: 'Provider' }], allowLoopback: true } }),
    /^trust\.allowLoopback: provider keys and client metadata may be fetched from loopback over http/,
  ],
];

describe('development-only settings', () => {
  it.each(unsafe)('%s: outside production, a warning that names the setting and the fix', async (_name, change, message) => {
    process.env.NODE_ENV = 'development';
    const { logger, warnings } = capturingLogger();
    const service = await createService(change(options(logger)));
    await service.close();
    expect(warnings.filter((w) => message.test(w))).toHaveLength(1);
  });

  it.each(unsafe)('%s: with NODE_ENV=production, a refusal to start', async (_name, change, message) => {
    process.env.NODE_ENV = 'production';
    const { logger } = capturingLogger();
    const started = createService(change(options(logger)));
    await expect(started).rejects.toThrow(ConfigError);
    await expect(started).rejects.toThrow(message);
    await expect(started).rejects.toThrow(/not with NODE_ENV=production/);
  });

  it('a production-fit configuration starts with NODE_ENV=production and warns of nothing; an explicit memory store is taken as meant', async () => {
    process.env.NODE_ENV = 'production';
    const { logger, warnings } = capturingLogger();
    const service = await createService(options(logger));
    await service.close();
    expect(warnings).toEqual([]);
  });
});
