import { createRequire } from 'node:module';
import type pg from 'pg';

let loaded: typeof pg | undefined;

/**
 * The `pg` driver, loaded when the first PostgreSQL store is made instead of when this module is
 * imported: it takes about 100 ms to import, which every user of `@authmd/service` would otherwise
 * pay at start-up, on SQLite as well. Required, not imported, so that `createPostgresStore` stays
 * synchronous.
 */
export function pgDriver(): typeof pg {
  return (loaded ??= loadPg(createRequire(import.meta.url)));
}

/** `pg` is an optional peer of `@authmd/core`: without it, the error says what to install. */
export function loadPg(require: (id: string) => unknown): typeof pg {
  try {
    return require('pg') as typeof pg;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error('The PostgreSQL store needs the pg package, which is not installed: run `npm install pg` (version 8).', { cause: error });
  }
}
