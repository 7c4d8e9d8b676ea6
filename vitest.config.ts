import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time on this two-core machine: most of them wait on sockets, child processes and
    // timers more than they compute (one worker left the CPUs a third idle). Four made time bounds flaky.
    maxWorkers: 2,
  },
});
