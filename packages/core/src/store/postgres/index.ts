/** The PostgreSQL backend; needs `pg` (8). */
export { createPostgresStore, SchemaVersionError, POSTGRES_LAYOUT_VERSION, type PostgresStoreOptions } from './postgres-store.ts';
