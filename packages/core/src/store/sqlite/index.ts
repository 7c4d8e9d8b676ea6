/** The embedded SQLite backend; needs `better-sqlite3` (12). */
export { createSqliteStore } from './sqlite-store.ts';
export { StoragePathError, pathKind, fsReason } from './storage-path.ts';
