import { mkdirSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { fsReason, pathKind, StoragePathError } from './storage-path.ts';

/**
 * Opens the SQLite database at `path` in WAL mode, or throws a StoragePathError naming the path and what
 * to change. better-sqlite3 alone says "unable to open database file" or "disk I/O error" without a path,
 * and with a named pipe in place of the WAL it opens, writes into the pipe and blocks once it is full.
 */
export function openDatabase(path: string): Database.Database {
  if (path === ':memory:' || path === '') return withWal(new Database(path));
  const file = resolve(path);
  for (const own of [file, `${file}-wal`, `${file}-shm`]) {
    const kind = pathKind(own);
    if (kind !== undefined && kind !== 'a file') {
      throw new StoragePathError(`The SQLite database needs ${own} to be a file, but it is ${kind}. Move it away, or give the store another path.`);
    }
  }
  const directory = dirname(file);
  const directoryKind = pathKind(directory);
  if (directoryKind !== undefined && directoryKind !== 'a directory') {
    throw new StoragePathError(`The SQLite database needs ${directory} to be a directory, but it is ${directoryKind}. Give the store a path in a directory.`);
  }
  try {
    mkdirSync(directory, { recursive: true });
  } catch (error) {
    throw new StoragePathError(`Cannot create the directory ${directory} for the SQLite database: ${fsReason(error)}.`, { cause: error });
  }
  try {
    return withWal(new Database(file));
  } catch (error) {
    throw new StoragePathError(
      `Cannot open the SQLite database ${file}: ${error instanceof Error ? error.message : String(error)}. ` +
        `This process must be able to write the directory ${directory}: SQLite keeps ${basename(file)}-wal and ${basename(file)}-shm beside the database.`,
      { cause: error },
    );
  }
}

function withWal(db: Database.Database): Database.Database {
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL'); // the first statement that reads (and may write) the file
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
