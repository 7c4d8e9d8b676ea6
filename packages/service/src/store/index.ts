export * from './contract.ts';
export { createMemoryStore } from './memory/memory-store.ts';
export { createSqliteStore } from './sqlite/sqlite-store.ts';
export { StoragePathError, pathKind, fsReason } from './sqlite/storage-path.ts';
export { createPostgresStore, SchemaVersionError, POSTGRES_LAYOUT_VERSION, type PostgresStoreOptions } from './postgres/postgres-store.ts';
export { withRedis, type WithRedisOptions, type AnyRedisClient } from './redis/index.ts';
