import { useBackend } from '../support/harness.ts';

/** The tests of sign-in-limits.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./sign-in-limits.test.ts');
