import { useBackend } from '../support/harness.ts';

/** The tests of service-auth.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./service-auth.test.ts');
