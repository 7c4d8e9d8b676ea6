import { useBackend } from '../support/harness.ts';

/** The tests of claim-start.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./claim-start.test.ts');
