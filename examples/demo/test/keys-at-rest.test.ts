import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseKeyEncryptionKeys } from '@authmd/service/keys';
import { afterTest } from '../../../test-support/after-test.ts';
import { KEY_ENCRYPTION_KEY_FILE } from '../src/key-encryption.ts';
import { startDemo } from '../src/start.ts';

/**
 * The demo's key-encryption key (issue 10): without AUTHMD_KEY_ENCRYPTION_KEY it generates one into
 * the data directory (0600) and reuses it on every later start, so the signing keys in authmd.db and
 * provider.db are stored encrypted and survive restarts.
 */

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-demo-keys-'));
  afterTest(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type StoredKey = { kid: string; privateJwk?: unknown; wrappedPrivateKey?: { kek: string; data: string } };

/** A keyring row straight from the SQLite file. */
function keyringRow(dbPath: string, id: string): { text: string; keys: StoredKey[] } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const { keys } = db.prepare('SELECT keys FROM keyrings WHERE id = ?').get(id) as { keys: string };
    return { text: keys, keys: JSON.parse(keys) };
  } finally {
    db.close();
  }
}

async function jwks(url: string): Promise<unknown> {
  return (await fetch(`${url}/.well-known/jwks.json`, { headers: { connection: 'close' } })).json();
}

describe('the demo key-encryption key', () => {
  it('is generated into the data directory (0600) once, and reused with the same signing keys on the next start', async () => {
    const dataDir = join(tempDir(), 'data');
    const kekPath = join(dataDir, KEY_ENCRYPTION_KEY_FILE);

    const first = await startDemo({ port: 0, providerPort: 0, dataDir });
    afterTest(() => first.close());
    expect(first.keyEncryption).toEqual({ source: 'file', path: kekPath, generated: true });
    expect(statSync(kekPath).mode & 0o777).toBe(0o600);
    const kekText = readFileSync(kekPath, 'utf8');
    expect(kekText).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
    const [kek] = parseKeyEncryptionKeys(kekText.trim());
    const serviceKeys = await jwks(first.url);
    const providerKeys = await jwks(first.provider!.url);
    await first.close();

    // Both keyrings are stored encrypted by that key, none in plaintext.
    for (const [dbPath, id] of [[first.dbPath, 'service'], [first.provider!.dbPath, 'provider']] as const) {
      const row = keyringRow(dbPath, id);
      expect(row.keys.length, id).toBeGreaterThan(0);
      for (const key of row.keys) {
        expect(key.privateJwk, id).toBeUndefined();
        expect(key.wrappedPrivateKey?.kek, id).toBe(kek!.id);
      }
      expect(row.text).not.toMatch(/"d"\s*:/);
    }

    const second = await startDemo({ port: 0, providerPort: 0, dataDir });
    afterTest(() => second.close());
    expect(second.keyEncryption).toEqual({ source: 'file', path: kekPath, generated: false });
    expect(readFileSync(kekPath, 'utf8')).toBe(kekText);
    expect(await jwks(second.url)).toEqual(serviceKeys);
    expect(await jwks(second.provider!.url)).toEqual(providerKeys);
    // It signs with that key: a registration's assertion names a published kid.
    const registered = await (
      await fetch(`${second.url}/agent/identity`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"anonymous"}' })
    ).json();
    const kid = JSON.parse(Buffer.from(registered.identity.assertion.split('.')[0], 'base64url').toString()).kid;
    expect((serviceKeys as { keys: { kid: string }[] }).keys.map((k) => k.kid)).toContain(kid);
  });

  it('is AUTHMD_KEY_ENCRYPTION_KEY when that is set: no file is written', async () => {
    const dataDir = tempDir();
    const value = Buffer.alloc(32, 7).toString('hex');
    const demo = await startDemo({ port: 0, dataDir, keyEncryptionKey: value });
    afterTest(() => demo.close());
    expect(demo.keyEncryption).toEqual({ source: 'environment', generated: false });
    expect(existsSync(join(dataDir, KEY_ENCRYPTION_KEY_FILE))).toBe(false);
    await demo.close();
    expect(keyringRow(demo.dbPath, 'service').keys.map((k) => k.wrappedPrivateKey?.kek)).toEqual([parseKeyEncryptionKeys(value)[0]!.id]);

    // A malformed value stops the start, naming the variable.
    await expect(startDemo({ port: 0, dataDir: tempDir(), keyEncryptionKey: 'not-a-key' })).rejects.toThrow(/AUTHMD_KEY_ENCRYPTION_KEY/);
  });
});

describe('npm start and the key-encryption key', () => {
  // node with tsx's loader, not the tsx binary: SIGTERM then reaches main.ts's own handler directly
  // (the binary relays it to a child process, and under load may exit 143 before the child answers).

  /** Runs main.ts until its banner is out; returns the banner's lines of interest and the service's JWKS, then stops it. */
  async function runOnce(dataDir: string): Promise<{ keyLine: string; jwks: unknown }> {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', AUTHMD_DATA_DIR: dataDir };
    delete env.AUTHMD_KEY_ENCRYPTION_KEY;
    const child = spawn(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', 'examples/demo/src/main.ts'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    try {
      const deadline = Date.now() + 30_000;
      while (!/Home page\s+http:\/\/127\.0\.0\.1:\d+\//.test(stdout) || !stdout.includes('Ctrl+C')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no banner: ${stdout}\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const url = /Home page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout)![1]!;
      const keyLine = stdout.split('\n').find((line) => line.trimStart().startsWith('Key encryption')) ?? '';
      return { keyLine, jwks: await jwks(url) };
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }

  it('says at start that it generated the key, then that it reused it, and keeps the signing key', async () => {
    const dataDir = tempDir();
    const kekPath = join(dataDir, KEY_ENCRYPTION_KEY_FILE);
    const first = await runOnce(dataDir);
    expect(first.keyLine).toContain(kekPath);
    expect(first.keyLine).toContain('generated now');
    expect(first.keyLine).toContain('AUTHMD_KEY_ENCRYPTION_KEY');
    const kekText = readFileSync(kekPath, 'utf8');

    const second = await runOnce(dataDir);
    expect(second.keyLine).toContain(kekPath);
    expect(second.keyLine).toContain('reused');
    expect(readFileSync(kekPath, 'utf8')).toBe(kekText);
    expect(second.jwks).toEqual(first.jwks);
  }, 90_000); // two processes started one after the other, each compiling the demo with tsx
});
