/** Every test file of the repository, as Vitest's `include`. */
export const TEST_FILES = ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'];

/**
 * Test files that run each in a process of their own. Every other file shares its worker's process,
 * and so its modules, with the files before it (Vitest's `isolate: false`): importing the packages
 * once per worker instead of once per file takes most of the suite's start-up CPU away. A file
 * belongs here when it changes what the files after it would see:
 * - `useBackend(...)`: module state of the harness, then the HTTP suite of another file imported
 *   again (a shared worker would hand back the module it already ran, with no tests in it);
 * - `vi.mock(...)`: a module replaced for the whole process;
 * - OpenTelemetry's global tracer provider, which a process may set once.
 * `examples/demo/test/suite-isolation.test.ts` checks that every file doing one of these is listed.
 */
export const ISOLATED_FILES = [
  // useBackend and the suites they import again
  '**/*-postgres.test.ts',
  'packages/service/test/admin/admin-api-sqlite.test.ts',
  // vi.mock
  'packages/core/test/fetch/connect-check.test.ts',
  'packages/service/test/engine/verified-assertions.test.ts',
  'packages/service/test/trust/jws-verify.test.ts',
  // the global tracer provider
  'packages/provider/test/tracing.test.ts',
  'packages/service/test/metrics/tracing.test.ts',
];

/** What makes a file one of ISOLATED_FILES (see above). */
export const NEEDS_ISOLATION = /\buseBackend\(|\bvi\.mock\(|\bvi\.doMock\(|support\/tracing\.ts|setGlobalTracerProvider|\bvi\.stubGlobal\(|\bvi\.stubEnv\(/;
