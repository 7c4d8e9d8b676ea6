import { randomBytes } from 'node:crypto';
import { mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsReason, pathKind, StoragePathError } from '@authmd/service/store';
import { KEY_ENCRYPTION_KEY_FILE } from './key-encryption.ts';

/**
 * Checks AUTHMD_DATA_DIR before anything is kept there: a directory (created when missing) this process
 * can write. Otherwise a StoragePathError that names the path, the problem and what to set instead.
 * The SQLite files in it are checked by the store itself when it opens them.
 */
export function prepareDataDir(dataDir: string): void {
  const kind = pathKind(dataDir);
  if (kind !== undefined && kind !== 'a directory') {
    throw new StoragePathError(`AUTHMD_DATA_DIR is ${dataDir}, which is ${kind}, not a directory. ${CHOOSE_ANOTHER}`);
  }
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (error) {
    throw new StoragePathError(`Cannot create the data directory ${dataDir} (AUTHMD_DATA_DIR): ${fsReason(error)}. ${CHOOSE_ANOTHER}`, { cause: error });
  }
  const probe = join(dataDir, `.authmd-write-check.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (error) {
    throw new StoragePathError(`Cannot write in the data directory ${dataDir} (AUTHMD_DATA_DIR): ${fsReason(error)}. ${CHOOSE_ANOTHER}`, { cause: error });
  }
  const keyFile = join(dataDir, KEY_ENCRYPTION_KEY_FILE);
  const keyKind = pathKind(keyFile);
  if (keyKind !== undefined && keyKind !== 'a file') {
    throw new StoragePathError(`The key-encryption key ${keyFile} must be a file, but it is ${keyKind}. Move it away, or set another AUTHMD_DATA_DIR.`);
  }
}

const CHOOSE_ANOTHER = 'Set AUTHMD_DATA_DIR to a directory this user can write (it is created when missing), or unset it to use ./data.';
