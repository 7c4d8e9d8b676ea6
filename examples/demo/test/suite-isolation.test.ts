import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ISOLATED_FILES, NEEDS_ISOLATION, SUITES_AGAIN_ON, TEST_FILES } from '../../../test-support/test-files.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The globs of test-files.ts as regular expressions: `**∕` any folders, `*` any name part. */
function globRegExp(glob: string): RegExp {
  const pattern = glob
    .split(/(\*\*\/|\*)/)
    .map((part) => (part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${pattern}$`);
}

const matchesAny = (globs: string[], path: string): boolean => globs.some((glob) => globRegExp(glob).test(path));

/** The files under each package's, example's and the bench's test folder that TEST_FILES matches. */
function testFiles(): string[] {
  const testDirs = ['packages', 'examples']
    .flatMap((parent) => readdirSync(join(repoRoot, parent)).map((name) => `${parent}/${name}/test`))
    .concat('bench/test');
  return testDirs
    .flatMap((dir) => {
      try {
        return readdirSync(join(repoRoot, dir), { recursive: true }).map((path) => `${dir}/${String(path).split('\\').join('/')}`);
      } catch {
        return []; // a package without tests
      }
    })
    .filter((path) => matchesAny(TEST_FILES, path));
}

describe("the suite's shared workers", () => {
  it('finds the test files by the same globs as Vitest', () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(150);
    expect(files).toContain('examples/demo/test/suite-isolation.test.ts');
    expect(files).toContain('packages/service/test/trust/jws-verify.test.ts');
    expect(matchesAny(ISOLATED_FILES, 'packages/service/test/trust/jws-verify.test.ts')).toBe(true);
    expect(matchesAny(ISOLATED_FILES, 'packages/service/test/http/flow.test.ts')).toBe(false);
  });

  it('runs every file that changes process-wide state in a process of its own', () => {
    const needing = testFiles().filter((path) => NEEDS_ISOLATION.test(readFileSync(join(repoRoot, path), 'utf8')));
    expect(needing.length).toBeGreaterThanOrEqual(5);
    expect(needing.filter((path) => !matchesAny(ISOLATED_FILES, path)), 'add these to ISOLATED_FILES in test-support/test-files.ts').toEqual([]);
  });

  it('lists no isolated file, and no suite to run again, that does not exist', () => {
    const files = testFiles();
    for (const glob of ISOLATED_FILES) expect(files.filter((path) => matchesAny([glob], path)), glob).not.toEqual([]);
    for (const suite of Object.values(SUITES_AGAIN_ON).flat()) expect(files, suite).toContain(suite);
  });
});
