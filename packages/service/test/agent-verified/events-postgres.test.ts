import { useBackend } from '../support/harness.ts';

/** The tests of events.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./events.test.ts');
