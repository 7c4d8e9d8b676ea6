/** Every test file of the repository, as Vitest's `include`. */
export const TEST_FILES = ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'bench/test/**/*.test.ts'];

/**
 * Suites that run a second time with every service the harness starts on another store: Vitest runs
 * them again in a project of that name, whose AUTHMD_TEST_BACKEND the harness reads (a test that
 * names its store or backend keeps it). Their first run is on memory.
 */
export const SUITES_AGAIN_ON = {
  postgres: [
    'packages/service/test/admin/admin-api.test.ts',
    'packages/service/test/agent-verified/algorithms.test.ts',
    'packages/service/test/agent-verified/claim-anonymous.test.ts',
    'packages/service/test/agent-verified/claims.test.ts',
    'packages/service/test/agent-verified/events.test.ts',
    'packages/service/test/agent-verified/issuer-type-audience.test.ts',
    'packages/service/test/agent-verified/matching.test.ts',
    'packages/service/test/agent-verified/operator-revocation.test.ts',
    'packages/service/test/agent-verified/replay.test.ts',
    'packages/service/test/agent-verified/token-grant.test.ts',
    'packages/service/test/claim/audit.test.ts',
    'packages/service/test/claim/claim-start.test.ts',
    'packages/service/test/claim/rate-limits.test.ts',
    'packages/service/test/claim/read-back.test.ts',
    'packages/service/test/claim/refresh.test.ts',
    'packages/service/test/claim/service-auth.test.ts',
    'packages/service/test/claim/sign-in-limits.test.ts',
    'packages/service/test/claim/sign-in.test.ts',
    'packages/service/test/claim/type-in.test.ts',
    'packages/service/test/http/flow.test.ts',
    'packages/service/test/v01/claim.test.ts',
    'packages/service/test/v01/registration.test.ts',
  ],
  sqlite: ['packages/service/test/admin/admin-api.test.ts'],
};

/**
 * Test files that run each in a process of their own. Every other file shares its worker's process,
 * and so its modules, with the files before it (Vitest's `isolate: false`): importing the packages
 * once per worker instead of once per file takes most of the suite's start-up CPU away. A file
 * belongs here when it changes what the files after it would see:
 * - `vi.mock(...)`: a module replaced for the whole process;
 * - OpenTelemetry's global tracer provider, which a process may set once;
 * - a test file imported by another (a shared worker hands back the module it already ran, with no
 *   tests in it).
 * `examples/demo/test/suite-isolation.test.ts` checks that every file doing one of these is listed.
 */
export const ISOLATED_FILES = [
  // vi.mock
  'packages/core/test/fetch/connect-check.test.ts',
  'packages/service/test/engine/verified-assertions.test.ts',
  'packages/service/test/trust/jws-verify.test.ts',
  // the global tracer provider
  'packages/provider/test/tracing.test.ts',
  'packages/service/test/metrics/tracing.test.ts',
];

/** What makes a file one of ISOLATED_FILES (see above). */
export const NEEDS_ISOLATION = /\bvi\.mock\(|\bvi\.doMock\(|support\/tracing\.ts|setGlobalTracerProvider|\bvi\.stubGlobal\(|\bvi\.stubEnv\(|import\(['"][^'"]*\.test\.ts['"]\)|from ['"][^'"]*\.test\.ts['"]/;
