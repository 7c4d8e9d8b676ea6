import { useBackend } from '../support/harness.ts';

/** The tests of admin-api.test.ts again, every service on SQLite. */
useBackend('sqlite');
await import('./admin-api.test.ts');
