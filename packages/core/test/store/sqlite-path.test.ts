import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { StoragePathError } from '../../src/store/sqlite/storage-path.ts';

/** A path the SQLite store cannot use is refused at once with the path and the problem (issue 14). */
describe('sqlite store: an unusable path', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'authmd-sqlite-path-'));
    dirs.push(dir);
    return dir;
  }
  function refusal(path: string): StoragePathError {
    try {
      createSqliteStore({ path, checkpointIntervalMs: 0 });
    } catch (error) {
      expect(error).toBeInstanceOf(StoragePathError);
      return error as StoragePathError;
    }
    throw new Error(`createSqliteStore accepted ${path}`);
  }

  it('a directory where the database should be', () => {
    const path = join(tempDir(), 'authmd.db');
    mkdirSync(path);
    expect(refusal(path).message).toBe(`The SQLite database needs ${path} to be a file, but it is a directory. Move it away, or give the store another path.`);
  });

  it('a named pipe where the database or its WAL should be: refused, where SQLite would fail without a path or block on it', () => {
    for (const own of ['', '-wal', '-shm']) {
      const path = join(tempDir(), 'authmd.db');
      execFileSync('mkfifo', [`${path}${own}`]);
      expect(refusal(path).message).toContain(`needs ${path}${own} to be a file, but it is a named pipe (FIFO)`);
    }
  });

  it('a file where its directory should be, or where a directory above it should be: names the directory and the problem', () => {
    const blocker = join(tempDir(), 'data');
    writeFileSync(blocker, '');
    expect(refusal(join(blocker, 'authmd.db')).message).toBe(`The SQLite database needs ${blocker} to be a directory, but it is a file. Give the store a path in a directory.`);
    expect(refusal(join(blocker, 'below', 'authmd.db')).message).toBe(
      `Cannot create the directory ${join(blocker, 'below')} for the SQLite database: a part of the path is a file, not a directory.`,
    );
  });

  it('a directory SQLite cannot create files in: names the database, the directory and what to fix', () => {
    // /proc/self exists but takes no new files, even for root.
    const message = refusal('/proc/self/authmd.db').message;
    expect(message).toContain('Cannot open the SQLite database /proc/self/authmd.db: unable to open database file.');
    expect(message).toContain('This process must be able to write the directory /proc/self');
  });

  it('a usable path in a directory not yet there still opens', async () => {
    const path = join(tempDir(), 'nested', 'authmd.db');
    const store = createSqliteStore({ path, checkpointIntervalMs: 0 });
    await store.close();
  });
});
