import { useBackend } from '../support/harness.ts';

/** The tests of issuer-type-audience.test.ts again, every service on PostgreSQL (unless a test names its backend or store). */
useBackend('postgres');
await import('./issuer-type-audience.test.ts');
