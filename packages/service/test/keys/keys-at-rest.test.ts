import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, randomBytes, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createService, createSqliteStore, silentLogger, type ServiceOptions } from '@authmd/service';
import {
  Keyring,
  KeyEncryptionError,
  keyrings,
  localKeyEncryptionKey,
  parseKeyEncryptionKeys,
  resolveKeyEncryption,
  type KeyEncryptionKey,
  type KeyWrapContext,
} from '@authmd/service/keys';
import type { KeyringRow, StoredKey } from '@authmd/core/keys';
import { afterTest } from '../../../../test-support/after-test.ts';
import { databaseHolds, keyMaterialIn, signedBy } from '../../../../test-support/key-material.ts';
import { recordingLogger } from '../../../../test-support/recording-logger.ts';
import { accessTokenFor, registerAnonymous, startService, testClock, type HarnessOptions, type RunningService } from '../support/harness.ts';

/**
 * Private signing keys at rest (issue 10): with a key-encryption key (KEK) the database holds the
 * private keys only wrapped (AES-256-GCM, bound to the KEK id, the keyring and the kid); a copy of
 * the database without the KEK cannot sign; KEKs rotate; plaintext keyrings are encrypted on open.
 * Every test runs on a real SQLite file and reads the file's bytes itself.
 */

function newKekText(): string {
  return randomBytes(32).toString('base64url');
}

function dbPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-keys-'));
  afterTest(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'authmd.db');
}

/** A service over HTTP on the SQLite file at `path`; closed after the test unless the test closes it first. */
async function startOn(path: string, options: HarnessOptions = {}): Promise<RunningService & { stop(): Promise<void> }> {
  const running = await startService({ store: createSqliteStore({ path }), ...options });
  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= running.close());
  afterTest(stop);
  return { ...running, stop };
}

const SERVICE_OPTIONS = {
  issuer: 'https://auth.example',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  logger: silentLogger,
  maintenanceIntervalSeconds: 0,
  mail: { outbox: true },
} satisfies Partial<ServiceOptions>;

/** createService on the file at `path` that must fail to start; returns what it threw. */
async function refusal(path: string, options: Partial<ServiceOptions>): Promise<Error> {
  const store = createSqliteStore({ path });
  try {
    const service = await createService({ ...SERVICE_OPTIONS, store, ...options });
    await service.close();
  } catch (error) {
    await store.close();
    return error as Error;
  }
  throw new Error('the service started');
}

/** The keyring row as SQLite holds it, read through a connection of its own. */
function rawKeyring(path: string, id = 'service'): { text: string; row: KeyringRow } {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const raw = db.prepare('SELECT id, version, keys FROM keyrings WHERE id = ?').get(id) as { id: string; version: number; keys: string };
    return { text: raw.keys, row: { id: raw.id, version: raw.version, keys: JSON.parse(raw.keys) as StoredKey[] } };
  } finally {
    db.close();
  }
}

/**
 * The keyring, opened on a store of its own at `path` with the given KEKs: the real way to reach the
 * private keys. Its clock is the harness's, so that the keys a test service retired are still published.
 */
async function openKeyring(path: string, keyEncryptionKeys: readonly KeyEncryptionKey[], id = 'service'): Promise<Keyring> {
  const store = createSqliteStore({ path });
  afterTest(() => store.close());
  await store.migrate([keyrings]);
  return Keyring.open({
    store,
    algorithm: 'ES256',
    clock: testClock(),
    logger: silentLogger,
    publishAfterRetirementMs: 3_600_000,
    rotateAfterMs: 90 * 86_400_000,
    id,
    keyEncryptionKeys,
  });
}

function kidOf(jwt: string): string {
  return JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')).kid;
}

async function jwks(base: string): Promise<{ keys: Record<string, unknown>[] }> {
  return (await fetch(`${base}/.well-known/jwks.json`)).json();
}

/**
 * Whether the service at `base` publishes the key that signed `jwt`. Across restarts the harness's
 * port, and so the issuer, changes: an assertion of an earlier run is checked against the keys, not exchanged.
 */
async function publishesSignerOf(base: string, jwt: string): Promise<boolean> {
  const [h, p, s] = jwt.split('.') as [string, string, string];
  const jwk = (await jwks(base)).keys.find((k) => k.kid === kidOf(jwt));
  if (!jwk) return false;
  const publicKey = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  return verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
}

describe('private signing keys at rest, with a key-encryption key', () => {
  it('leaves no private key material in the database file or its WAL, while running and after closing', async () => {
    const path = dbPath();
    const keks = parseKeyEncryptionKeys(newKekText());
    const running = await startOn(path, { keyEncryption: { keys: keks } });
    const first = await registerAnonymous(running.base);
    await accessTokenFor(running.base, first.identity.assertion); // verified with the stored public key
    await running.service.rotateKeys();
    const second = await registerAnonymous(running.base);
    const kids = [kidOf(first.identity.assertion), kidOf(second.identity.assertion)];
    expect(new Set(kids).size).toBe(2);

    // The row: every key wrapped by the KEK, no JWK `d` and no plaintext JWK.
    const { text, row } = rawKeyring(path);
    expect(row.keys.map((k) => k.kid).sort()).toEqual([...kids].sort());
    for (const key of row.keys) {
      expect(key.privateJwk).toBeUndefined();
      expect(key.wrappedPrivateKey).toMatchObject({ kek: keks[0]!.id, data: expect.stringMatching(/^[A-Za-z0-9_-]{60,}$/) });
      expect(Object.keys(key.publicJwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    }
    expect(text).not.toMatch(/"d"\s*:/);

    // The private keys, reached the legitimate way (with the KEK), are the ones that signed.
    const keyring = await openKeyring(path, keks);
    const privateKeys: KeyObject[] = [];
    for (const [i, registration] of [first, second].entries()) {
      const key = await keyring.find(kids[i]!);
      expect(key, kids[i]).toBeDefined();
      expect(signedBy(registration.identity.assertion, key!.privateKey)).toBe(true);
      privateKeys.push(key!.privateKey);
    }

    // Positive controls: the scan sees the keyring (public coordinates, wrapped blobs)…
    for (const key of row.keys) {
      expect(databaseHolds(path, key.publicJwk.x as string)).toBe(true);
      expect(databaseHolds(path, key.wrappedPrivateKey!.data)).toBe(true);
    }
    // …and no form of either private key is anywhere in the files.
    expect(keyMaterialIn(path, privateKeys)).toEqual([]);

    await running.stop();
    expect(keyMaterialIn(path, privateKeys)).toEqual([]);
  });

  it('takes the KEK from AUTHMD_KEY_ENCRYPTION_KEY, in base64url, base64 or hex', async () => {
    const secret = randomBytes(32);
    const expectedId = localKeyEncryptionKey(secret).id;
    for (const text of [secret.toString('base64url'), secret.toString('base64'), secret.toString('hex')]) {
      const path = dbPath();
      const saved = process.env.AUTHMD_KEY_ENCRYPTION_KEY;
      process.env.AUTHMD_KEY_ENCRYPTION_KEY = ` ${text} `;
      try {
        const running = await startOn(path);
        await registerAnonymous(running.base);
        await running.stop();
      } finally {
        if (saved === undefined) delete process.env.AUTHMD_KEY_ENCRYPTION_KEY;
        else process.env.AUTHMD_KEY_ENCRYPTION_KEY = saved;
      }
      const [key] = rawKeyring(path).row.keys;
      expect(key!.privateJwk).toBeUndefined();
      expect(key!.wrappedPrivateKey!.kek).toBe(expectedId);
    }
    expect(expectedId).toMatch(/^local-[A-Za-z0-9_-]{16}$/);
  });

  it('refuses a malformed AUTHMD_KEY_ENCRYPTION_KEY without echoing it, naming the variable and how to generate one', () => {
    for (const value of ['too-short', `${newKekText()}x`, randomBytes(16).toString('hex'), `${newKekText()},`]) {
      const attempt = () => resolveKeyEncryption({ options: undefined, env: { AUTHMD_KEY_ENCRYPTION_KEY: value }, logger: silentLogger, what: 'service' });
      expect(attempt).toThrow(KeyEncryptionError);
      expect(attempt).toThrow(/AUTHMD_KEY_ENCRYPTION_KEY/);
      expect(attempt).toThrow(/randomBytes\(32\)\.toString\('base64url'\)/);
      try {
        attempt();
      } catch (error) {
        for (const part of value.split(',').filter((p) => p.length > 8)) expect((error as Error).message).not.toContain(part);
      }
    }
    const same = newKekText();
    expect(() => parseKeyEncryptionKeys(`${same},${same}`)).toThrow(/listed twice/);
  });
});

describe('opening a database whose keys are encrypted', () => {
  it('fails without the KEK, or with a wrong one, with an error that says what to set', async () => {
    const path = dbPath();
    const kekText = newKekText();
    const running = await startOn(path, { keyEncryption: { keys: parseKeyEncryptionKeys(kekText) } });
    await registerAnonymous(running.base);
    await running.stop();

    // A copy of the database alone: no key-encryption key at all.
    const missing = await refusal(path, {});
    expect(missing).toBeInstanceOf(KeyEncryptionError);
    expect(missing.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
    expect(missing.message).toContain('no key-encryption key is configured');
    expect(missing.message).toContain(parseKeyEncryptionKeys(kekText)[0]!.id);

    // Another key: its id is not the one the keys were wrapped with.
    const wrong = await refusal(path, { keyEncryption: { keys: parseKeyEncryptionKeys(newKekText()) } });
    expect(wrong).toBeInstanceOf(KeyEncryptionError);
    expect(wrong.message).toMatch(/not among the configured ones/);
    expect(wrong.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');

    // Another key under the same id: AES-GCM refuses it.
    const impostor = localKeyEncryptionKey(randomBytes(32), parseKeyEncryptionKeys(kekText)[0]!.id);
    const undecryptable = await refusal(path, { keyEncryption: { keys: [impostor] } });
    expect(undecryptable).toBeInstanceOf(KeyEncryptionError);
    expect(undecryptable.message).toMatch(/does not decrypt/);

    // Nothing of that was written: the right key still opens it.
    const again = await startOn(path, { keyEncryption: { keys: parseKeyEncryptionKeys(kekText) } });
    expect((await registerAnonymous(again.base)).identity.assertion).toBeTruthy();
  });

  it('does not decrypt a wrapped key moved to another kid or another keyring', async () => {
    const path = dbPath();
    const keks = parseKeyEncryptionKeys(newKekText());
    const running = await startOn(path, { keyEncryption: { keys: keks } });
    await running.service.rotateKeys();
    await running.stop();
    const { row } = rawKeyring(path);
    expect(row.keys).toHaveLength(2);

    // The same row under the provider's id: the keyring id is bound into every wrapped key.
    const db = new Database(path);
    try {
      db.prepare('INSERT INTO keyrings (id, version, keys) VALUES (?, ?, ?)').run('provider', 1, JSON.stringify(row.keys));
    } finally {
      db.close();
    }
    await expect(openKeyring(path, keks, 'provider')).rejects.toThrow(/does not decrypt the provider keyring's key/);

    // The two wrapped private keys swapped between the kids of the service's keyring.
    const [a, b] = row.keys as [StoredKey, StoredKey];
    const swapped = [
      { ...a, wrappedPrivateKey: b.wrappedPrivateKey },
      { ...b, wrappedPrivateKey: a.wrappedPrivateKey },
    ];
    const writer = new Database(path);
    try {
      writer.prepare('UPDATE keyrings SET keys = ?, version = version + 1 WHERE id = ?').run(JSON.stringify(swapped), 'service');
    } finally {
      writer.close();
    }
    const error = await refusal(path, { keyEncryption: { keys: keks } });
    expect(error).toBeInstanceOf(KeyEncryptionError);
    expect(error.message).toMatch(/does not decrypt the service keyring's key/);
  });
});

describe('rotating the key-encryption key', () => {
  it('re-wraps with the newest KEK on open; the old one can then be dropped', async () => {
    const path = dbPath();
    const oldText = newKekText();
    const newText = newKekText();
    const [oldKek] = parseKeyEncryptionKeys(oldText);
    const [newKek] = parseKeyEncryptionKeys(newText);

    const first = await startOn(path, { keyEncryption: { keys: [oldKek!] } });
    const registration = await registerAnonymous(first.base);
    await first.service.rotateKeys(); // two keys, both wrapped by the old KEK
    const published = await jwks(first.base);
    await first.stop();
    const before = rawKeyring(path).row;
    expect(before.keys.map((k) => k.wrappedPrivateKey!.kek)).toEqual([oldKek!.id, oldKek!.id]);

    // [new, old], as AUTHMD_KEY_ENCRYPTION_KEY=new,old: the old one unwraps, the new one re-wraps.
    const logger = recordingLogger();
    const second = await startOn(path, { keyEncryption: { keys: parseKeyEncryptionKeys(`${newText}, ${oldText}`) }, logger });
    const after = rawKeyring(path).row;
    expect(after.version).toBe(before.version + 1);
    expect(after.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
    expect(after.keys.map((k) => k.wrappedPrivateKey!.kek)).toEqual([newKek!.id, newKek!.id]);
    expect(after.keys.map((k) => k.wrappedPrivateKey!.data)).not.toEqual(before.keys.map((k) => k.wrappedPrivateKey!.data));
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'info', message: expect.stringMatching(/re-wrapped/), fields: expect.objectContaining({ kek: newKek!.id, fromOlderKeks: 2 }) }));
    expect(await jwks(second.base)).toEqual(published);
    await second.stop();

    // Only the new KEK: opens, verifies what the first run signed, signs.
    const third = await startOn(path, { keyEncryption: { keys: [newKek!] } });
    expect(await jwks(third.base)).toEqual(published);
    expect(await publishesSignerOf(third.base, registration.identity.assertion)).toBe(true);
    const fresh = await registerAnonymous(third.base);
    await accessTokenFor(third.base, fresh.identity.assertion);
    const keyring = await openKeyring(path, [newKek!]);
    expect(signedBy(fresh.identity.assertion, (await keyring.find(kidOf(fresh.identity.assertion)))!.privateKey)).toBe(true);
    await third.stop();

    // The old KEK alone no longer opens it.
    const stale = await refusal(path, { keyEncryption: { keys: [oldKek!] } });
    expect(stale.message).toMatch(/not among the configured ones/);
    expect(rawKeyring(path).row.version).toBe(after.version);
  });

  it('leaves the wrapping alone on later reads by a replica whose newest KEK is another one (no re-wrapping back and forth)', async () => {
    const path = dbPath();
    const [a] = parseKeyEncryptionKeys(newKekText());
    const [b] = parseKeyEncryptionKeys(newKekText());
    const first = await openKeyring(path, [a!, b!]); // creates the keyring, wrapped by a
    const second = await openKeyring(path, [b!, a!]); // re-wraps with b at open
    expect(rawKeyring(path).row.keys.map((k) => k.wrappedPrivateKey!.kek)).toEqual([b!.id]);
    const version = rawKeyring(path).row.version;
    await first.maintain(); // reads b's wrapping and keeps it
    await first.rotate(); // the new key is wrapped by a, the kept one stays wrapped by b
    const rotated = rawKeyring(path).row;
    expect(rotated.version).toBe(version + 1);
    expect(rotated.keys.map((k) => k.wrappedPrivateKey!.kek)).toEqual([a!.id, b!.id]);
    await second.maintain();
    expect(rawKeyring(path).row.version).toBe(rotated.version);
    expect(second.active().kid).toBe(first.active().kid);
  });
});

describe('a keyring stored in plaintext', () => {
  it('is encrypted when the service opens it with a KEK, keeping its keys', async () => {
    const path = dbPath();
    const warnings = recordingLogger();
    const plain = await startOn(path, { logger: warnings });
    expect(warnings.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringContaining('UNENCRYPTED') }));
    expect(warnings.lines.find((l) => l.message.includes('UNENCRYPTED'))!.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
    const registration = await registerAnonymous(plain.base);
    const published = await jwks(plain.base);
    await plain.stop();
    const before = rawKeyring(path);
    expect(before.text).toMatch(/"d":/); // the starting point really is plaintext
    const plaintextD = before.row.keys[0]!.privateJwk!.d as string;
    // Positive control for the byte scan of the other tests: it finds a plaintext key.
    const plaintextKey = createPrivateKey({ key: before.row.keys[0]!.privateJwk as JsonWebKey, format: 'jwk' });
    expect(keyMaterialIn(path, [plaintextKey]).some((leak) => leak.startsWith('d (base64url) in '))).toBe(true);

    const keks = parseKeyEncryptionKeys(newKekText());
    const logger = recordingLogger();
    const encrypted = await startOn(path, { keyEncryption: { keys: keks }, logger });
    const after = rawKeyring(path);
    expect(after.row.version).toBe(before.row.version + 1);
    expect(after.row.keys.map((k) => k.kid)).toEqual(before.row.keys.map((k) => k.kid));
    for (const key of after.row.keys) {
      expect(key.privateJwk).toBeUndefined();
      expect(key.wrappedPrivateKey!.kek).toBe(keks[0]!.id);
    }
    expect(after.text).not.toContain(plaintextD);
    expect(after.text).not.toMatch(/"d"\s*:/);
    // Said loudly, with the advice that matters: old copies of the database still hold the key.
    expect(logger.lines).toContainEqual(
      expect.objectContaining({ level: 'warn', message: expect.stringMatching(/stored in plaintext.*rotate the keys/), fields: expect.objectContaining({ fromPlaintext: 1 }) }),
    );
    expect(await jwks(encrypted.base)).toEqual(published);
    expect(await publishesSignerOf(encrypted.base, registration.identity.assertion)).toBe(true);
    await accessTokenFor(encrypted.base, (await registerAnonymous(encrypted.base)).identity.assertion);
    await encrypted.stop();

    // From now on the KEK is needed.
    expect((await refusal(path, {})).message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
  });

  it('is encrypted exactly once when two replicas open it at the same time (compare-and-set)', async () => {
    const path = dbPath();
    const plain = await openKeyring(path, []);
    const kid = plain.active().kid;
    const before = rawKeyring(path).row;
    expect(before.keys[0]!.privateJwk).toBeDefined();

    const keks = parseKeyEncryptionKeys(newKekText());
    const [a, b] = await Promise.all([openKeyring(path, keks), openKeyring(path, keks)]);
    const after = rawKeyring(path).row;
    expect(after.version).toBe(before.version + 1);
    expect(after.keys.map((k) => k.kid)).toEqual([kid]);
    expect(after.keys[0]!.privateJwk).toBeUndefined();
    expect(a.active().kid).toBe(kid);
    expect(b.active().kid).toBe(kid);
  });

  it('is refused in production without a KEK, unless plaintext keys are explicitly allowed', async () => {
    const path = dbPath();
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const refused = await refusal(path, {});
      expect(refused).toBeInstanceOf(KeyEncryptionError);
      expect(refused.message).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
      expect(refused.message).toContain('allowPlaintext');
    } finally {
      process.env.NODE_ENV = saved;
    }
    // Refused before anything was stored: no plaintext key was written first.
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'keyrings'`).all()).toEqual([]);
    } finally {
      db.close();
    }

    const logger = recordingLogger();
    expect(resolveKeyEncryption({ options: { allowPlaintext: true }, env: { NODE_ENV: 'production' }, logger, what: 'service' })).toEqual([]);
    expect(logger.lines).toEqual([expect.objectContaining({ level: 'warn', message: expect.stringContaining('allowPlaintext') })]);
  });
});

/**
 * A key-management service done for real in the test: named key versions of AES-256-GCM that never
 * leave it, the encryption context bound as AAD, versions that can be disabled. The service reaches it
 * only through the `KeyEncryptionKey` callbacks, as it would a cloud KMS.
 */
class TestKms {
  private readonly versions = new Map<string, { key: Buffer; enabled: boolean }>();
  readonly calls: { op: 'encrypt' | 'decrypt'; keyId: string; context: Record<string, string> }[] = [];

  createKey(keyId: string): KeyEncryptionKey {
    this.versions.set(keyId, { key: randomBytes(32), enabled: true });
    return this.kek(keyId);
  }

  disable(keyId: string): void {
    this.versions.get(keyId)!.enabled = false;
  }

  /** The callbacks an operator would write around their KMS client. */
  kek(keyId: string): KeyEncryptionKey {
    const encryptionContext = (context: KeyWrapContext) => ({ keyring: context.keyringId, kid: context.kid, kek: context.kekId });
    return {
      id: keyId,
      wrap: async (plaintext, context) => this.encrypt(keyId, plaintext, encryptionContext(context)),
      unwrap: async (ciphertext, context) => this.decrypt(keyId, ciphertext, encryptionContext(context)),
    };
  }

  private usable(keyId: string): Buffer {
    const version = this.versions.get(keyId);
    if (!version) throw new Error(`KMS: no key ${keyId}`);
    if (!version.enabled) throw new Error(`KMS: key ${keyId} is disabled`);
    return version.key;
  }

  private aad(context: Record<string, string>): Buffer {
    return Buffer.from(JSON.stringify(Object.entries(context).sort(([x], [y]) => x.localeCompare(y))));
  }

  private async encrypt(keyId: string, plaintext: Uint8Array, context: Record<string, string>): Promise<Uint8Array> {
    this.calls.push({ op: 'encrypt', keyId, context });
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.usable(keyId), iv);
    cipher.setAAD(this.aad(context));
    return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }

  private async decrypt(keyId: string, blob: Uint8Array, context: Record<string, string>): Promise<Uint8Array> {
    this.calls.push({ op: 'decrypt', keyId, context });
    const bytes = Buffer.from(blob);
    const decipher = createDecipheriv('aes-256-gcm', this.usable(keyId), bytes.subarray(0, 12));
    decipher.setAAD(this.aad(context));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
  }
}

describe('a KMS behind the KeyEncryptionKey callbacks', () => {
  it('wraps, unwraps, rotates key versions, and fails clearly when the KMS refuses', async () => {
    const path = dbPath();
    const kms = new TestKms();
    const v1 = kms.createKey('projects/demo/keys/authmd/versions/1');

    const first = await startOn(path, { keyEncryption: { keys: [v1] } });
    const registration = await registerAnonymous(first.base);
    const published = await jwks(first.base);
    await first.stop();
    const [stored] = rawKeyring(path).row.keys;
    expect(stored!.privateJwk).toBeUndefined();
    expect(stored!.wrappedPrivateKey!.kek).toBe(v1.id);
    expect(kms.calls).toContainEqual({ op: 'encrypt', keyId: v1.id, context: { keyring: 'service', kid: stored!.kid, kek: v1.id } });
    const keyring = await openKeyring(path, [v1]);
    const privateKey = (await keyring.find(stored!.kid))!.privateKey;
    expect(signedBy(registration.identity.assertion, privateKey)).toBe(true);
    expect(keyMaterialIn(path, [privateKey])).toEqual([]);
    expect(kms.calls.filter((c) => c.op === 'decrypt').map((c) => c.context)).toContainEqual({ keyring: 'service', kid: stored!.kid, kek: v1.id });

    // A new key version: listed first, it re-wraps; the old version can then be disabled.
    const v2 = kms.createKey('projects/demo/keys/authmd/versions/2');
    const second = await startOn(path, { keyEncryption: { keys: [v2, v1] } });
    expect(rawKeyring(path).row.keys.map((k) => k.wrappedPrivateKey!.kek)).toEqual([v2.id]);
    await second.stop();
    kms.disable(v1.id);
    const third = await startOn(path, { keyEncryption: { keys: [v2] } });
    expect(await jwks(third.base)).toEqual(published);
    expect(await publishesSignerOf(third.base, registration.identity.assertion)).toBe(true);
    await accessTokenFor(third.base, (await registerAnonymous(third.base)).identity.assertion);
    await third.stop();

    // The KMS refusing (a disabled key version) stops the start, naming the key and keeping the cause.
    kms.disable(v2.id);
    const refused = await refusal(path, { keyEncryption: { keys: [v2] } });
    expect(refused).toBeInstanceOf(KeyEncryptionError);
    expect(refused.message).toContain(v2.id);
    expect(String((refused as Error & { cause?: unknown }).cause)).toContain('disabled');
  });
});

describe('keyrings without a service', () => {
  it('a Keyring opened without KEKs on a store holding wrapped keys says what to configure', async () => {
    const path = dbPath();
    const keks = parseKeyEncryptionKeys(newKekText());
    await openKeyring(path, keks);
    await expect(openKeyring(path, [])).rejects.toThrow(KeyEncryptionError);
    await expect(openKeyring(path, [])).rejects.toThrow(/set AUTHMD_KEY_ENCRYPTION_KEY \(or the keyEncryption option\)/);
  });
});
