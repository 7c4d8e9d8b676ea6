/**
 * The store contract and the in-memory backend. The durable backends are their own entry points, each
 * needing its driver: `@authmd/core/sqlite` (better-sqlite3), `@authmd/core/postgres` (pg) and
 * `@authmd/core/redis` (redis).
 */
export * from './contract.ts';
export { createMemoryStore } from './memory/memory-store.ts';
