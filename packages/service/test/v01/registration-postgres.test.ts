import { useBackend } from '../support/harness.ts';

/** The v0.1 registration tests of registration.test.ts again, every service on its own fresh PostgreSQL database. */
useBackend('postgres');
await import('./registration.test.ts');
