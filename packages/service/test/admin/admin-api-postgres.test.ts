import { useBackend } from '../support/harness.ts';

/** The tests of admin-api.test.ts again, every service on PostgreSQL: keyset pages, counts and counters in SQL. */
useBackend('postgres');
await import('./admin-api.test.ts');
