import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_ENCRYPTION_KEY_ENV, parseKeyEncryptionKeys, type KeyEncryptionKey } from '@authmd/service/keys';

/**
 * The demo's key-encryption key (issue 10): the private signing keys in `authmd.db` and `provider.db`
 * are stored encrypted by it. AUTHMD_KEY_ENCRYPTION_KEY when set; otherwise a key generated once into
 * `<dataDir>/key-encryption-key` (mode 0600) and read from there on every later start.
 */

export const KEY_ENCRYPTION_KEY_FILE = 'key-encryption-key';

export interface DemoKeyEncryption {
  /** Newest first, as `keyEncryption.keys` takes them. */
  keys: KeyEncryptionKey[];
  /** Where the key came from. */
  source: 'environment' | 'file';
  /** The file, when `source` is 'file'. */
  path?: string;
  /** True when this start generated the file. */
  generated: boolean;
}

/** `fromEnvironment`: the value of AUTHMD_KEY_ENCRYPTION_KEY (unset or blank: use the file). */
export function demoKeyEncryption(dataDir: string, fromEnvironment: string | undefined): DemoKeyEncryption {
  if (fromEnvironment?.trim()) return { keys: parseKeyEncryptionKeys(fromEnvironment.trim()), source: 'environment', generated: false };

  const path = join(dataDir, KEY_ENCRYPTION_KEY_FILE);
  mkdirSync(dataDir, { recursive: true });
  const generated = createOnce(path, `${randomBytes(32).toString('base64url')}\n`);
  if (!generated && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const keys = parseKeyEncryptionKeys(readFileSync(path, 'utf8').trim(), `${path} (or ${KEY_ENCRYPTION_KEY_ENV})`);
  return { keys, source: 'file', path, generated };
}

/**
 * Writes `content` to `path` (mode 0600) unless the file exists; true when this call wrote it. The
 * content goes to a temporary file that is then hard-linked into place: no reader ever sees a
 * half-written key, and of two demos starting at once exactly one key wins.
 */
function createOnce(path: string, content: string): boolean {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 'EEXIST') return false;
    throw error;
  } finally {
    unlinkSync(temporary);
  }
}
