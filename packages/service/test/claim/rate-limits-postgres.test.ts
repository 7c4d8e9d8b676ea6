import { useBackend } from '../support/harness.ts';

/** The tests of rate-limits.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./rate-limits.test.ts');
