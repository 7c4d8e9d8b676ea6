import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeyEncryptionError, Keyring, keyrings, parseKeyEncryptionKeys, type KeyEncryptionKey } from '@authmd/core/keys';
import { silentLogger } from '@authmd/core';
import { createProvider } from '../src/index.ts';
import { afterTest } from '../../../test-support/after-test.ts';
import { databaseHolds, keyMaterialIn, signedBy } from '../../../test-support/key-material.ts';
import { recordingLogger } from '../../../test-support/recording-logger.ts';
import { ada, removeTempDirs, sqliteStore, startFakeService, startProvider, tempDir, TestClock, type FakeService } from './support.ts';

/**
 * The provider's signing keys at rest (issue 10): its keyring (row 'provider') is encrypted by the
 * same mechanism as the service's, from `keyEncryption` or AUTHMD_KEY_ENCRYPTION_KEY.
 */

let service: FakeService;
beforeAll(async () => {
  service = await startFakeService();
});
afterAll(async () => {
  await service.close();
});
afterEach(() => removeTempDirs());

type StoredKey = { kid: string; privateJwk?: Record<string, unknown>; wrappedPrivateKey?: { kek: string; data: string }; publicJwk: Record<string, unknown> };

function providerKeyring(path: string): { text: string; keys: StoredKey[] } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const { keys } = db.prepare('SELECT keys FROM keyrings WHERE id = ?').get('provider') as { keys: string };
    return { text: keys, keys: JSON.parse(keys) };
  } finally {
    db.close();
  }
}

async function started(path: string, options: Parameters<typeof startProvider>[0] = {}) {
  const clock = new TestClock();
  const running = await startProvider({ clock: clock.now, store: sqliteStore(path), ...options });
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= running.close());
  afterTest(close);
  return { ...running, clock, close };
}

async function mint(running: Awaited<ReturnType<typeof started>>): Promise<string> {
  await running.provider.grants.create('user_ada', { audience: service.url, mode: 'always' });
  return (await running.provider.mintIdJag({ user: ada(running.clock.seconds - 60), audience: service.url })).assertion;
}

async function refusal(path: string, options: { keyEncryption?: { keys: KeyEncryptionKey[] } } = {}): Promise<Error> {
  const store = sqliteStore(path);
  try {
    const provider = await createProvider({ issuer: 'http://127.0.0.1:9', store, allowLoopback: true, ...options });
    await provider.close();
  } catch (error) {
    await store.close();
    return error as Error;
  }
  throw new Error('the provider started');
}

/** Runs `fn` with AUTHMD_KEY_ENCRYPTION_KEY (and NODE_ENV) set as given, then puts them back. */
async function withEnv<T>(values: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  const apply = (entries: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(entries)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(values);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

describe("the provider's signing keys at rest", () => {
  it('are stored only encrypted: no private key material in the database files, and the database alone cannot sign', async () => {
    const path = join(tempDir(), 'provider.db');
    const kekText = randomBytes(32).toString('base64url');
    const keks = parseKeyEncryptionKeys(kekText);
    const running = await started(path, { keyEncryption: { keys: keks } });
    const assertion = await mint(running);
    const published = running.provider.jwks();

    const { text, keys } = providerKeyring(path);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.privateJwk).toBeUndefined();
    expect(keys[0]!.wrappedPrivateKey!.kek).toBe(keks[0]!.id);
    expect(text).not.toMatch(/"d"\s*:/);

    // The private key, reached with the KEK, is the one that signed the ID-JAG; no form of it is in the files.
    const store = sqliteStore(path);
    afterTest(() => store.close());
    await store.migrate([keyrings]);
    const keyring = await Keyring.open({
      store,
      algorithm: 'ES256',
      clock: running.clock.now,
      logger: silentLogger,
      publishAfterRetirementMs: 3_600_000,
      rotateAfterMs: 30 * 86_400_000,
      id: 'provider',
      keyEncryptionKeys: keks,
    });
    const privateKey = keyring.active().privateKey;
    expect(signedBy(assertion, privateKey)).toBe(true);
    expect(databaseHolds(path, keys[0]!.publicJwk.x as string)).toBe(true);
    expect(keyMaterialIn(path, [privateKey])).toEqual([]);
    await running.close();
    expect(keyMaterialIn(path, [privateKey])).toEqual([]);

    // Without the KEK, or with another: refused, naming what to set.
    const missing = await refusal(path);
    expect(missing).toBeInstanceOf(KeyEncryptionError);
    expect(missing.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
    expect(missing.message).toContain('provider keyring');
    const wrong = await refusal(path, { keyEncryption: { keys: parseKeyEncryptionKeys(randomBytes(32).toString('hex')) } });
    expect(wrong).toBeInstanceOf(KeyEncryptionError);
    expect(wrong.message).toMatch(/not among the configured ones/);

    // With it, from the environment: the same key signs again.
    const again = await withEnv({ AUTHMD_KEY_ENCRYPTION_KEY: kekText }, () => started(path));
    expect(again.provider.jwks()).toEqual(published);
    expect(signedBy(await mint(again), privateKey)).toBe(true);
  });

  it('are encrypted when a provider whose keyring is in plaintext starts with a KEK', async () => {
    const path = join(tempDir(), 'provider.db');
    const warnings = recordingLogger();
    const plain = await withEnv({ AUTHMD_KEY_ENCRYPTION_KEY: undefined }, () => started(path, { logger: warnings }));
    expect(warnings.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringMatching(/agent provider's private signing keys are stored UNENCRYPTED/) }));
    const published = plain.provider.jwks();
    await plain.close();
    expect(providerKeyring(path).text).toMatch(/"d":/);

    const keks = parseKeyEncryptionKeys(randomBytes(32).toString('base64'));
    const logger = recordingLogger();
    const encrypted = await started(path, { keyEncryption: { keys: keks }, logger });
    const { text, keys } = providerKeyring(path);
    expect(text).not.toMatch(/"d"\s*:/);
    expect(keys.map((k) => k.wrappedPrivateKey?.kek)).toEqual([keks[0]!.id]);
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ keyring: 'provider', fromPlaintext: 1 }) }));
    expect(encrypted.provider.jwks()).toEqual(published);
    expect(await mint(encrypted)).toBeTruthy();
  });

  it('are refused in plaintext when NODE_ENV=production', async () => {
    const path = join(tempDir(), 'provider.db');
    const refused = await withEnv({ NODE_ENV: 'production', AUTHMD_KEY_ENCRYPTION_KEY: undefined }, () => refusal(path));
    expect(refused).toBeInstanceOf(KeyEncryptionError);
    expect(refused.message).toContain("agent provider's private signing keys would be stored unencrypted");
    expect(refused.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
  });
});
