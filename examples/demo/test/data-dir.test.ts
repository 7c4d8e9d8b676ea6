import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoragePathError } from '@authmd/service/store';
import { describe, expect, it } from 'vitest';
import { startDemo } from '../src/start.ts';
import { tempDirs } from '../../../test-support/temp-dirs.ts';

/** A data directory the demo cannot use is named, with the problem and what to set instead (issue 14). */

const tempDir = tempDirs('authmd-data-dir-');

async function refusal(dataDir: string): Promise<string> {
  const started = startDemo({ port: 0, dataDir });
  await expect(started).rejects.toBeInstanceOf(StoragePathError);
  return ((await started.catch((error: unknown) => error)) as Error).message;
}

const FIX = 'Set AUTHMD_DATA_DIR to a directory this user can write (it is created when missing), or unset it to use ./data.';

describe('the demo with an unusable AUTHMD_DATA_DIR', () => {
  it('a file, a named pipe or a device: says what it is instead of a directory', async () => {
    const file = join(tempDir(), 'data');
    writeFileSync(file, '');
    expect(await refusal(file)).toBe(`AUTHMD_DATA_DIR is ${file}, which is a file, not a directory. ${FIX}`);
    const pipe = join(tempDir(), 'data');
    execFileSync('mkfifo', [pipe]);
    expect(await refusal(pipe)).toBe(`AUTHMD_DATA_DIR is ${pipe}, which is a named pipe (FIFO), not a directory. ${FIX}`);
    expect(await refusal('/dev/null')).toBe(`AUTHMD_DATA_DIR is /dev/null, which is a device, not a directory. ${FIX}`);
  });

  it('below a file: cannot be created, and says why', async () => {
    const file = join(tempDir(), 'data');
    writeFileSync(file, '');
    expect(await refusal(join(file, 'below'))).toBe(`Cannot create the data directory ${join(file, 'below')} (AUTHMD_DATA_DIR): a part of the path is a file, not a directory. ${FIX}`);
  });

  it('a directory that takes no new files: says it cannot write there', async () => {
    // /proc/self exists, and nobody (root included) can create a file in it.
    expect(await refusal('/proc/self')).toMatch(/^Cannot write in the data directory \/proc\/self \(AUTHMD_DATA_DIR\): .+\. Set AUTHMD_DATA_DIR/);
  });

  it('a named pipe where the key-encryption key or the database should be: refused at once, where it used to hang or fail without a path', async () => {
    const keyDir = tempDir();
    execFileSync('mkfifo', [join(keyDir, 'key-encryption-key')]);
    expect(await refusal(keyDir)).toBe(`The key-encryption key ${join(keyDir, 'key-encryption-key')} must be a file, but it is a named pipe (FIFO). Move it away, or set another AUTHMD_DATA_DIR.`);
    const dbDir = tempDir();
    execFileSync('mkfifo', [join(dbDir, 'authmd.db-wal')]);
    expect(await refusal(dbDir)).toContain(`needs ${join(dbDir, 'authmd.db-wal')} to be a file, but it is a named pipe (FIFO)`);
  });

  it('a directory not there yet is created, and the demo starts in it', async () => {
    const dataDir = join(tempDir(), 'a', 'b');
    const demo = await startDemo({ port: 0, dataDir });
    try {
      expect(demo.dbPath).toBe(join(dataDir, 'authmd.db'));
      expect((await fetch(`${demo.url}/auth.md`)).status).toBe(200);
    } finally {
      await demo.close();
    }
  });
});
