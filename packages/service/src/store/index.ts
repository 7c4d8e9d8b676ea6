export * from './contract.ts';
export { createMemoryStore } from './memory/memory-store.ts';
export { createSqliteStore } from './sqlite/sqlite-store.ts';
