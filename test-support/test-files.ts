import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
 * What makes a test file run in a process of its own. Every other file shares its worker's process,
 * and so its modules, with the files before it (Vitest's `isolate: false`): importing the packages
 * once per worker instead of once per file takes most of the suite's start-up CPU away. A file runs
 * alone when it changes what the files after it would see:
 * - `vi.mock(...)` (or `doMock`, `stubGlobal`, `stubEnv`): a module or global replaced for the whole process;
 * - OpenTelemetry's global tracer provider, which a process may set once;
 * - importing another test file (a shared worker hands back the module it already ran, with no tests in it).
 */
export const NEEDS_ISOLATION = /\bvi\.mock\(|\bvi\.doMock\(|support\/tracing\.ts|setGlobalTracerProvider|\bvi\.stubGlobal\(|\bvi\.stubEnv\(|import\(['"][^'"]*\.test\.ts['"]\)|from ['"][^'"]*\.test\.ts['"]/;

const repoRoot = fileURLToPath(new URL('../', import.meta.url));

/** A glob of this file as a regular expression: `**∕` any folders, `*` any part of a name. */
function globRegExp(glob: string): RegExp {
  const pattern = glob
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${pattern}$`);
}

/** The files under `dir` (relative to the repository's root), but for node_modules and dot-folders such as Next's `.next`. */
function* filesUnder(dir: string): Generator<string> {
  if (!existsSync(join(repoRoot, dir))) return;
  for (const entry of readdirSync(join(repoRoot, dir), { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* filesUnder(path);
    else yield path;
  }
}

/** The folder a glob's matches are all under: the part before its first wildcard's folder (`packages`, `bench/test`), or a plain path's folder. */
export function globRoot(glob: string): string {
  const wildcard = glob.indexOf('*');
  const upTo = wildcard === -1 ? glob.length : wildcard;
  return glob.slice(0, Math.max(0, glob.lastIndexOf('/', upTo)));
}

/** Every test file TEST_FILES matches, relative to the repository's root, with `/` between folders. */
export function testFiles(): string[] {
  const globs = TEST_FILES.map(globRegExp);
  const roots = new Set(TEST_FILES.map(globRoot));
  return [...roots].flatMap((root) => [...filesUnder(root)]).filter((path) => globs.some((glob) => glob.test(path)));
}

/** The test files that run each in a process of their own: those whose text matches NEEDS_ISOLATION. */
export function isolatedFiles(): string[] {
  return testFiles().filter((path) => NEEDS_ISOLATION.test(readFileSync(join(repoRoot, path), 'utf8')));
}
