import { describe, expect, it } from 'vitest';
import { globRoot, isolatedFiles, SUITES_AGAIN_ON, testFiles } from '../../../test-support/test-files.ts';

/** The files that set process-wide state, as this repository has them: each must run alone. */
const KNOWN_TO_NEED_ISOLATION = [
  'packages/core/test/fetch/connect-check.test.ts', // vi.mock
  'packages/service/test/engine/verified-assertions.test.ts', // vi.mock
  'packages/service/test/trust/jws-verify.test.ts', // vi.mock of node:crypto
  'packages/provider/test/tracing.test.ts', // the global tracer provider
  'packages/service/test/metrics/tracing.test.ts', // the global tracer provider
];

describe("the suite's shared workers", () => {
  it('finds the test files by the same globs as Vitest', () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(150);
    expect(files).toEqual(expect.arrayContaining(['examples/demo/test/suite-isolation.test.ts', 'bench/test/server-timing.test.ts', ...KNOWN_TO_NEED_ISOLATION]));
    expect(files.filter((path) => !path.endsWith('.test.ts'))).toEqual([]);
  });

  it('walks each glob from the folder before its first wildcard', () => {
    expect(globRoot('packages/*/test/**/*.test.ts')).toBe('packages');
    expect(globRoot('bench/test/**/*.test.ts')).toBe('bench/test');
    expect(globRoot('tools/check.test.ts')).toBe('tools');
    expect(globRoot('*.test.ts')).toBe('');
  });

  it('runs every file that changes process-wide state in a process of its own, and few others', () => {
    const isolated = isolatedFiles();
    expect(isolated).toEqual(expect.arrayContaining(KNOWN_TO_NEED_ISOLATION));
    // The suites that only start services and send requests share a process.
    for (const suite of Object.values(SUITES_AGAIN_ON).flat()) expect(isolated, suite).not.toContain(suite);
    expect(isolated.length).toBeLessThan(testFiles().length / 10);
  });

  it('names no suite to run again that does not exist', () => {
    const files = testFiles();
    for (const suite of Object.values(SUITES_AGAIN_ON).flat()) expect(files, suite).toContain(suite);
  });
});
