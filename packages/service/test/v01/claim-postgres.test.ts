import { useBackend } from '../support/harness.ts';

/** The v0.1 claim tests of claim.test.ts again, every service on its own fresh PostgreSQL database. */
useBackend('postgres');
await import('./claim.test.ts');
