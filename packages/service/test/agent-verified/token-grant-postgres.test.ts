import { useBackend } from '../support/harness.ts';

/** The tests of token-grant.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./token-grant.test.ts');
