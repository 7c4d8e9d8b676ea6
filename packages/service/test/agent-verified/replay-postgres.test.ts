import { useBackend } from '../support/harness.ts';

/** The tests of replay.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./replay.test.ts');
