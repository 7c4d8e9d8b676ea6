import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CredentialStoreCorruptError,
  CredentialStoreLockTimeoutError,
  FileCredentialStore,
  type IssuerRecord,
} from '../../src/store/index.ts';

const ISSUER = 'https://api.example.com';
const record = (overrides: Partial<IssuerRecord> = {}): IssuerRecord => ({
  registration_id: 'reg_1',
  registration_type: 'anonymous',
  claimed: false,
  ...overrides,
});
const mode = (path: string) => statSync(path).mode & 0o777;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'authmd-file-store-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('FileCredentialStore: path', () => {
  const saved = process.env['AUTHMD_STORE_PATH'];
  afterEach(() => {
    if (saved === undefined) delete process.env['AUTHMD_STORE_PATH'];
    else process.env['AUTHMD_STORE_PATH'] = saved;
  });

  it('defaults to AUTHMD_STORE_PATH, else ~/.authmd/credentials.json', () => {
    process.env['AUTHMD_STORE_PATH'] = join(root, 'env', 'creds.json');
    expect(new FileCredentialStore().path).toBe(join(root, 'env', 'creds.json'));
    delete process.env['AUTHMD_STORE_PATH'];
    expect(new FileCredentialStore().path).toBe(join(homedir(), '.authmd', 'credentials.json'));
    expect(new FileCredentialStore({ path: join(root, 'x.json') }).path).toBe(join(root, 'x.json'));
  });

  it('rejects nonsensical lock options', () => {
    expect(() => new FileCredentialStore({ path: join(root, 'x.json'), lockTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => new FileCredentialStore({ path: join(root, 'x.json'), staleLockMs: Number.NaN })).toThrow(RangeError);
  });
});

describe('FileCredentialStore: file and permissions', () => {
  it('creates the directory 0700 and the file 0600 on the first write', async () => {
    const path = join(root, 'home', '.authmd', 'credentials.json');
    const store = new FileCredentialStore({ path });
    expect(await store.list()).toEqual({});
    expect(existsSync(join(root, 'home'))).toBe(false); // reading creates nothing
    await store.update(ISSUER, () => record());
    expect(mode(join(root, 'home', '.authmd'))).toBe(0o700);
    expect(mode(path)).toBe(0o600);
  });

  it('does so even when the umask is permissive', async () => {
    const previous = process.umask(0);
    try {
      const path = join(root, 'permissive', 'credentials.json');
      const store = new FileCredentialStore({ path });
      await store.update(ISSUER, () => record());
      expect(mode(join(root, 'permissive'))).toBe(0o700);
      expect(mode(path)).toBe(0o600);
      await store.update(ISSUER, () => record({ claimed: true }));
      expect(mode(path)).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('leaves an existing directory alone but still writes the file 0600, replacing a looser file', async () => {
    const previous = process.umask(0);
    try {
      const dir = join(root, 'shared');
      mkdirSync(dir, { mode: 0o755 });
      const path = join(dir, 'credentials.json');
      writeFileSync(path, JSON.stringify({ version: 1, issuers: {} }), { mode: 0o644 });
      expect(mode(path)).toBe(0o644);
      await new FileCredentialStore({ path }).update(ISSUER, () => record());
      expect(mode(dir)).toBe(0o755);
      expect(mode(path)).toBe(0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('writes {"version":1,"issuers":{…}} that a fresh instance reads back', async () => {
    const path = join(root, 'credentials.json');
    const rec = record({
      registration_type: 'identity_assertion',
      claimed: true,
      identity: { assertion: 'eyJ.a.b', expires_at: '2030-01-01T00:00:00.000Z', refresh_token: { value: 'rt', expires_at: '2030-02-01T00:00:00.000Z' } },
      access_token: { value: 'at', expires_at: '2030-01-01T01:00:00.000Z', scope: 'api.read' },
    });
    await new FileCredentialStore({ path }).update(ISSUER, () => rec);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, issuers: { [ISSUER]: rec } });
    const fresh = new FileCredentialStore({ path });
    expect(await fresh.get(ISSUER)).toEqual(rec);
    expect(await fresh.list()).toEqual({ [ISSUER]: rec });
    expect(readdirSync(root)).toEqual(['credentials.json']); // no temp or lock file left
  });

  it('reads a file written by someone else, and sees changes made after it was constructed', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path });
    expect(await store.get(ISSUER)).toBeUndefined();
    writeFileSync(path, JSON.stringify({ version: 1, issuers: { [ISSUER]: record({ registration_id: 'reg_other' }) } }));
    expect(await store.get(ISSUER)).toEqual(record({ registration_id: 'reg_other' }));
    await new FileCredentialStore({ path }).update(ISSUER, () => undefined);
    expect(await store.list()).toEqual({});
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ version: 1, issuers: {} });
  });

  it('never writes unknown members, such as a smuggled claim token', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path });
    const smuggled = {
      ...record(),
      claim_token: 'clm_secret_top',
      identity: { assertion: 'eyJ.a.b', expires_at: '2030-01-01T00:00:00.000Z', claim_token: 'clm_secret_nested' },
      access_token: { value: 'at', expires_at: '2030-01-01T00:00:00.000Z', extra: 'clm_secret_deep' },
    } as unknown as IssuerRecord;
    const returned = await store.update(ISSUER, () => smuggled);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain('clm_secret');
    expect(text).not.toContain('claim_token');
    expect(returned).not.toHaveProperty('claim_token');
    expect(await store.get(ISSUER)).toEqual({
      ...record(),
      identity: { assertion: 'eyJ.a.b', expires_at: '2030-01-01T00:00:00.000Z' },
      access_token: { value: 'at', expires_at: '2030-01-01T00:00:00.000Z' },
    });
  });

  it('drops unknown members found in the file on the next write', async () => {
    const path = join(root, 'credentials.json');
    writeFileSync(path, JSON.stringify({ version: 1, issuers: { [ISSUER]: { ...record(), claim_token: 'clm_on_disk' } } }));
    const store = new FileCredentialStore({ path });
    expect(await store.get(ISSUER)).toEqual(record());
    await store.update('https://b.example', () => record({ registration_id: 'reg_b' }));
    expect(readFileSync(path, 'utf8')).not.toContain('clm_on_disk');
  });
});

describe('FileCredentialStore: a corrupt file', () => {
  const cases: [string, string][] = [
    ['not JSON', '{"version":1,"issuers":{'],
    ['empty', ''],
    ['an array', '[]'],
    ['another version', JSON.stringify({ version: 2, issuers: {} })],
    ['no version', JSON.stringify({ issuers: {} })],
    ['issuers not an object', JSON.stringify({ version: 1, issuers: [] })],
    ['a record of the wrong shape', JSON.stringify({ version: 1, issuers: { [ISSUER]: { registration_id: 'reg_1', claimed: false } } })],
    ['a bad nested member', JSON.stringify({ version: 1, issuers: { [ISSUER]: { ...record(), access_token: { value: 1 } } } })],
  ];

  it.each(cases)('%s: throws naming the path and the fix, and leaves the file untouched', async (_name, content) => {
    const path = join(root, 'credentials.json');
    writeFileSync(path, content, { mode: 0o600 });
    const store = new FileCredentialStore({ path });
    for (const attempt of [() => store.get(ISSUER), () => store.list(), () => store.update(ISSUER, () => record())]) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CredentialStoreCorruptError);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toMatch(/move it away/);
      expect((error as CredentialStoreCorruptError).path).toBe(path);
    }
    expect(readFileSync(path, 'utf8')).toBe(content);
    expect(readdirSync(root)).toEqual(['credentials.json']); // lock released, no temp file
  });
});

describe('FileCredentialStore: the lock file', () => {
  const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;
  const writeLock = (lockPath: string, pid: number, takenAt: Date) => {
    writeFileSync(lockPath, JSON.stringify({ pid, created_at: takenAt.toISOString(), token: 'foreign' }));
    utimesSync(lockPath, takenAt, takenAt);
  };

  it('is released after every update, even when change throws', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path });
    await store.update(ISSUER, () => record());
    expect(existsSync(`${path}.lock`)).toBe(false);
    await expect(
      store.update(ISSUER, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(await store.get(ISSUER)).toEqual(record());
  });

  it('takes over a stale lock left by a dead process', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path });
    writeLock(store.lockPath, deadPid(), new Date(Date.now() - 60 * 60_000));
    const started = Date.now();
    await store.update(ISSUER, () => record());
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await store.get(ISSUER)).toEqual(record());
    expect(readdirSync(root)).toEqual(['credentials.json']);
  });

  it('judges a lock it cannot parse by its mtime', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path, lockTimeoutMs: 300 });
    writeFileSync(store.lockPath, 'garbage');
    await expect(store.update(ISSUER, () => record())).rejects.toBeInstanceOf(CredentialStoreLockTimeoutError);
    const old = new Date(Date.now() - 60 * 60_000);
    utimesSync(store.lockPath, old, old);
    await store.update(ISSUER, () => record());
    expect(existsSync(store.lockPath)).toBe(false);
  });

  it('waits for a fresh foreign lock and times out with an error naming the lock file', async () => {
    const path = join(root, 'credentials.json');
    writeFileSync(path, JSON.stringify({ version: 1, issuers: { [ISSUER]: record() } }), { mode: 0o600 });
    const before = readFileSync(path, 'utf8');
    const store = new FileCredentialStore({ path, lockTimeoutMs: 400 });
    writeLock(store.lockPath, process.ppid, new Date());
    const started = Date.now();
    const error = await store.update(ISSUER, () => record({ claimed: true })).then(
      () => undefined,
      (e: unknown) => e,
    );
    const waited = Date.now() - started;
    expect(error).toBeInstanceOf(CredentialStoreLockTimeoutError);
    expect((error as Error).message).toContain(store.lockPath);
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(5_000);
    expect(readFileSync(path, 'utf8')).toBe(before); // nothing written
    expect(JSON.parse(readFileSync(store.lockPath, 'utf8')).token).toBe('foreign'); // not ours to remove
    // reads do not take the lock
    expect(await store.get(ISSUER)).toEqual(record());
  });

  it('waits while a foreign lock is held and proceeds once it is released', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path });
    writeLock(store.lockPath, process.ppid, new Date());
    const started = Date.now();
    setTimeout(() => rmSync(store.lockPath), 300);
    await store.update(ISSUER, () => record());
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(await store.get(ISSUER)).toEqual(record());
    expect(existsSync(store.lockPath)).toBe(false);
  });

  it('honours staleLockMs', async () => {
    const path = join(root, 'credentials.json');
    const store = new FileCredentialStore({ path, staleLockMs: 300, lockTimeoutMs: 5_000 });
    writeLock(store.lockPath, deadPid(), new Date());
    const started = Date.now();
    await store.update(ISSUER, () => record());
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(existsSync(store.lockPath)).toBe(false);
  });

  it('serialises updates from two instances on one file in one process', async () => {
    const path = join(root, 'credentials.json');
    const a = new FileCredentialStore({ path });
    const b = new FileCredentialStore({ path });
    const bump = (current: IssuerRecord | undefined) => record({ registration_id: String(Number(current?.registration_id ?? '0') + 1) });
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).update(ISSUER, bump)));
    expect((await a.get(ISSUER))!.registration_id).toBe('30');
    expect(readdirSync(root)).toEqual(['credentials.json']);
  });

  it('does not loosen an existing directory it did not create', async () => {
    const dir = join(root, 'loose');
    mkdirSync(dir);
    chmodSync(dir, 0o750);
    await new FileCredentialStore({ path: join(dir, 'c.json') }).update(ISSUER, () => record());
    expect(mode(dir)).toBe(0o750);
    expect(mode(join(dir, 'c.json'))).toBe(0o600);
  });
});
