import { statSync } from 'node:fs';

/** A path where a store keeps its files is unusable; the message names the path, the problem and the fix. */
export class StoragePathError extends Error {
  override name = 'StoragePathError';
}

/** What is at `path`, in words ("a file", "a named pipe (FIFO)", …), or undefined when nothing is there. */
export function pathKind(path: string): string | undefined {
  let stat;
  try {
    stat = statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined; // a parent is not a directory, or not searchable: creating the path will say which
  }
  if (!stat) return undefined;
  if (stat.isFile()) return 'a file';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a named pipe (FIFO)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** A file-system error as the words an operator acts on, rather than its bare code. */
export function fsReason(error: unknown): string {
  switch ((error as { code?: unknown }).code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'EEXIST':
      return 'something other than a directory is already there';
    case 'ENOENT':
      return 'a part of the path does not exist and cannot be created there';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EDQUOT':
      return 'the disk quota is used up';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}
