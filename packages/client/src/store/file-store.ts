/**
 * The credential file of the official auth.md client (protocol-reference §6.3):
 * `~/.authmd/credentials.json` (or `AUTHMD_STORE_PATH`), directory 0700, file 0600, content
 * `{"version":1,"issuers":{…}}`. Writes go to a temp file in the same directory that is renamed over
 * the target, so a reader sees the old file or the new one, never a partial one. `update` is
 * exclusive: an in-process queue per path, plus a lock file `<path>.lock` shared with other processes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { CredentialStore, IssuerRecord } from './contract.ts';
import { InvalidRecordError, requireIssuer, sanitizeRecord, toRecordMap } from './record.ts';

export interface FileCredentialStoreOptions {
  /** Defaults to `AUTHMD_STORE_PATH`, else `~/.authmd/credentials.json`. */
  path?: string;
  /** How long `update` waits for the lock before giving up. Default 10 000 ms. */
  lockTimeoutMs?: number;
  /** A lock older than this is taken to be left by a crashed process and is removed. Default 30 000 ms. */
  staleLockMs?: number;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
export const DEFAULT_STALE_LOCK_MS = 30_000;
const LOCK_RETRY_MS = 50;
const FILE_VERSION = 1;

/** The credential file exists but is not one this client can read; it is never overwritten. */
export class CredentialStoreCorruptError extends Error {
  override name = 'CredentialStoreCorruptError';
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The credential store ${path} is not a valid auth.md credential file (${reason}). It was left untouched; ` +
        `move it away (for example \`mv "${path}" "${path}.bak"\`) and the next login will start a fresh store.`,
      options,
    );
  }
}

/** Another process held `<path>.lock` for longer than the lock timeout. */
export class CredentialStoreLockTimeoutError extends Error {
  override name = 'CredentialStoreLockTimeoutError';
  constructor(
    readonly lockPath: string,
    readonly timeoutMs: number,
  ) {
    super(
      `Timed out after ${timeoutMs} ms waiting for the credential store lock ${lockPath}: another process is ` +
        `updating the store. Retry; if no authmd process is running, delete ${lockPath}.`,
    );
  }
}

export function defaultStorePath(): string {
  const fromEnv = process.env['AUTHMD_STORE_PATH'];
  return resolve(fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.authmd', 'credentials.json'));
}

/** In-process queues, per resolved path, so that two instances on one file do not contend on the lock file. */
const queues = new Map<string, Promise<unknown>>();

function enqueue<T>(key: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.then(task, task);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds`);
  return value;
}

interface LockInfo {
  token: string | undefined;
  /** When the lock was taken, ms since the epoch. */
  takenAt: number;
}

export class FileCredentialStore implements CredentialStore {
  readonly path: string;
  readonly lockPath: string;
  readonly lockTimeoutMs: number;
  readonly staleLockMs: number;

  constructor(options: FileCredentialStoreOptions = {}) {
    this.path = options.path !== undefined ? resolve(options.path) : defaultStorePath();
    this.lockPath = `${this.path}.lock`;
    this.lockTimeoutMs = positive(options.lockTimeoutMs, DEFAULT_LOCK_TIMEOUT_MS, 'lockTimeoutMs');
    this.staleLockMs = positive(options.staleLockMs, DEFAULT_STALE_LOCK_MS, 'staleLockMs');
  }

  async get(issuer: string): Promise<IssuerRecord | undefined> {
    requireIssuer(issuer);
    const records = await this.#read();
    return records.get(issuer);
  }

  async list(): Promise<Record<string, IssuerRecord>> {
    return toRecordMap(await this.#read());
  }

  update(
    issuer: string,
    change: (current: IssuerRecord | undefined) => IssuerRecord | undefined,
  ): Promise<IssuerRecord | undefined> {
    try {
      requireIssuer(issuer);
    } catch (error) {
      return Promise.reject(error);
    }
    return enqueue(this.path, async () => {
      await this.#ensureDirectory();
      const release = await this.#lock();
      try {
        const records = await this.#read();
        const current = records.get(issuer);
        const next = change(current === undefined ? undefined : sanitizeRecord(current));
        if (next === undefined) {
          if (current === undefined) return undefined; // nothing to delete: leave the file as it is
          records.delete(issuer);
        } else {
          records.set(issuer, sanitizeRecord(next, 'the record returned by change'));
        }
        await this.#write(records);
        const stored = records.get(issuer);
        return stored === undefined ? undefined : sanitizeRecord(stored);
      } finally {
        await release();
      }
    });
  }

  /** The file's records; a missing file is an empty store, anything unreadable throws. */
  async #read(): Promise<Map<string, IssuerRecord>> {
    let text: string;
    try {
      text = await fsp.readFile(this.path, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return new Map();
      throw error;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      throw new CredentialStoreCorruptError(this.path, 'not JSON', { cause: error });
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) {
      throw new CredentialStoreCorruptError(this.path, 'not a JSON object');
    }
    const { version, issuers } = data as { version?: unknown; issuers?: unknown };
    if (version !== FILE_VERSION) {
      throw new CredentialStoreCorruptError(this.path, `version is ${JSON.stringify(version) ?? 'missing'}, this client reads version ${FILE_VERSION}`);
    }
    if (typeof issuers !== 'object' || issuers === null || Array.isArray(issuers)) {
      throw new CredentialStoreCorruptError(this.path, '"issuers" is not an object');
    }
    const records = new Map<string, IssuerRecord>();
    for (const [issuer, record] of Object.entries(issuers)) {
      try {
        records.set(issuer, sanitizeRecord(record, `issuers[${JSON.stringify(issuer)}]`));
      } catch (error) {
        if (error instanceof InvalidRecordError) throw new CredentialStoreCorruptError(this.path, error.message, { cause: error });
        throw error;
      }
    }
    return records;
  }

  /** Temp file (0600, exclusive create) in the same directory, fsync, rename over the target, fsync the directory. */
  async #write(records: Map<string, IssuerRecord>): Promise<void> {
    const directory = dirname(this.path);
    const content = `${JSON.stringify({ version: FILE_VERSION, issuers: toRecordMap(records) }, null, 2)}\n`;
    const temp = join(directory, `.${basename(this.path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await fsp.open(temp, 'wx', 0o600);
    try {
      try {
        await handle.chmod(0o600); // in case the umask took owner bits away
        await handle.writeFile(content, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.rename(temp, this.path);
    } catch (error) {
      await fsp.rm(temp, { force: true });
      throw error;
    }
    await syncDirectory(directory);
  }

  /** Creates the directory 0700 when missing; an existing directory is left as it is. */
  async #ensureDirectory(): Promise<void> {
    const directory = dirname(this.path);
    const created = await fsp.mkdir(directory, { recursive: true, mode: 0o700 });
    if (created !== undefined) await fsp.chmod(directory, 0o700); // the umask may have loosened or narrowed it
  }

  /** Takes `<path>.lock`; resolves to the function that releases it. */
  async #lock(): Promise<() => Promise<void>> {
    const token = `${process.pid}.${randomBytes(8).toString('hex')}`;
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      try {
        const handle = await fsp.open(this.lockPath, 'wx', 0o600);
        try {
          await handle.writeFile(JSON.stringify({ pid: process.pid, created_at: new Date().toISOString(), token }));
        } finally {
          await handle.close();
        }
        return () => this.#unlock(token);
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
      }
      const holder = await this.#readLock(this.lockPath);
      if (holder === undefined) continue; // released in the meantime: try again at once
      if (this.#isStale(holder) && (await this.#breakStaleLock())) continue;
      if (Date.now() >= deadline) throw new CredentialStoreLockTimeoutError(this.lockPath, this.lockTimeoutMs);
      await sleep(Math.min(LOCK_RETRY_MS, Math.max(1, deadline - Date.now())));
    }
  }

  /** The lock's owner and age (from its content, else its mtime); undefined when it is gone. */
  async #readLock(file: string): Promise<LockInfo | undefined> {
    let text: string;
    let mtime: number;
    try {
      [text, mtime] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file).then((s) => s.mtimeMs)]);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const data = JSON.parse(text) as { token?: unknown; created_at?: unknown };
      const takenAt = typeof data.created_at === 'string' ? Date.parse(data.created_at) : Number.NaN;
      return { token: typeof data.token === 'string' ? data.token : undefined, takenAt: Number.isNaN(takenAt) ? mtime : takenAt };
    } catch {
      return { token: undefined, takenAt: mtime }; // being written right now, or written by another client
    }
  }

  #isStale(lock: LockInfo): boolean {
    return Date.now() - lock.takenAt > this.staleLockMs;
  }

  /**
   * Removes a stale lock. Waiters that find the same stale lock would otherwise race: one removes it
   * and takes a fresh lock, and another, acting on what it read before, removes that fresh lock. So
   * breaking is itself exclusive (`<path>.lock.break`, held only for a read and an unlink), and the
   * lock is read again under it. Resolves to true when the lock is gone, false when it was not ours
   * to break (someone else is breaking it, or it has been replaced by a live lock).
   */
  async #breakStaleLock(): Promise<boolean> {
    const breakPath = `${this.lockPath}.break`;
    try {
      await (await fsp.open(breakPath, 'wx', 0o600)).close();
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
      // left behind only by a process that died while breaking a lock
      const breaker = await this.#readLock(breakPath);
      if (breaker !== undefined && this.#isStale(breaker)) await fsp.rm(breakPath, { force: true });
      return false;
    }
    try {
      const holder = await this.#readLock(this.lockPath);
      if (holder === undefined) return true;
      if (!this.#isStale(holder)) return false;
      await fsp.rm(this.lockPath, { force: true });
      return true;
    } finally {
      await fsp.rm(breakPath, { force: true });
    }
  }

  /** Deletes the lock if it is still ours (a lock broken as stale may since belong to someone else). */
  async #unlock(token: string): Promise<void> {
    const holder = await this.#readLock(this.lockPath).catch(() => undefined);
    if (holder?.token === token) await fsp.rm(this.lockPath, { force: true });
  }
}

async function syncDirectory(directory: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(directory, 'r');
    await handle.sync();
  } catch {
    // not supported everywhere (Windows); the rename itself has happened
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
