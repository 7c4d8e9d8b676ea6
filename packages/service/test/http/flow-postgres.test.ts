import { useBackend } from '../support/harness.ts';

/** The HTTP flow tests of flow.test.ts again, every service on its own fresh PostgreSQL database. */
useBackend('postgres');
await import('./flow.test.ts');
