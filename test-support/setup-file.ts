import { afterEach } from 'vitest';
import { runAfterTestSteps } from './after-test.ts';

// Vitest runs this file before each test file, also where files share a worker and its modules.
afterEach(runAfterTestSteps);
