/** The store contract and every backend, from @authmd/core: the service installs all three drivers. */
export * from '@authmd/core/store';
export * from '@authmd/core/sqlite';
export * from '@authmd/core/postgres';
export * from '@authmd/core/redis';
