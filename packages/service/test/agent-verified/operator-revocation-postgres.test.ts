import { useBackend } from '../support/harness.ts';

/** The tests of operator-revocation.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./operator-revocation.test.ts');
