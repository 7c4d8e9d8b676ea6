import { defaultServerConditions } from 'vite';
import { configDefaults, defineConfig } from 'vitest/config';
import { isolatedFiles, SUITES_AGAIN_ON, TEST_FILES } from './test-support/test-files.ts';

// The workspace packages export their built dist/ to the world and their TypeScript sources under the
// "@authmd/source" condition: tests run the sources, with no build first (tsconfig.base.json's
// customConditions says the same to tsc, and `--conditions=@authmd/source` to node).
// Not "module": Vitest hands these conditions to the test processes' node too, whose require() would
// then take a bundler-only ESM build (OpenTelemetry's, with extensionless imports, under prom-client).
const conditions = ['@authmd/source', ...defaultServerConditions.filter((condition) => condition !== 'module')];

// Read from the test files themselves: those that set process-wide state (test-support/test-files.ts).
const ISOLATED_FILES = isolatedFiles();

export default defineConfig({
  // Vitest runs node tests in Vite's ssr environment: its conditions are the ones that count.
  ssr: { resolve: { conditions } },
  test: {
    setupFiles: ['./test-support/setup-file.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time on this two-core machine: most of them wait on sockets, child processes and
    // timers more than they compute (one worker left the CPUs a third idle). Three gained nothing (415 s
    // against 408, docs/decisions.md); four made time bounds flaky.
    maxWorkers: 2,
    projects: [
      // Files that leave nothing behind for the next file share their worker's process and modules:
      // the packages are imported once per worker, not once per file (test-support/test-files.ts).
      { extends: true, test: { name: 'shared', isolate: false, include: TEST_FILES, exclude: [...configDefaults.exclude, ...ISOLATED_FILES] } },
      { extends: true, test: { name: 'isolated', isolate: true, include: ISOLATED_FILES } },
      // The same suites again, every service on PostgreSQL (or SQLite): the harness reads the variable.
      ...Object.entries(SUITES_AGAIN_ON).map(([backend, include]) => ({
        extends: true as const,
        test: { name: backend, isolate: false, include, env: { AUTHMD_TEST_BACKEND: backend } },
      })),
    ],
  },
});
