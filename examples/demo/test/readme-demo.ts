import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { CODE_PLACEHOLDER } from '../src/claim-walkthrough.ts';
import { startDemo, type DemoOptions, type RunningDemo } from '../src/start.ts';
import { missingTools, Shell } from './shell.ts';

/** What a README test file works with: the demo it started, and the shell of the test running now. */
export interface ReadmeDemo {
  demo: RunningDemo;
  /** Opened by a test; closed after it. */
  shell: Shell | undefined;
}

/**
 * One demo for a test file that runs the README's commands (on a fresh data directory, removed
 * afterwards), and the shell each test opens, closed after each test.
 */
export function readmeDemoPerFile(name: string, options: Omit<DemoOptions, 'port' | 'dataDir'> = {}): ReadmeDemo {
  const state = { shell: undefined } as ReadmeDemo;
  let dataDir: string | undefined;
  beforeAll(async () => {
    expect(missingTools(), 'the printed commands need these tools on this machine').toEqual([]);
    dataDir = mkdtempSync(join(tmpdir(), `authmd-demo-${name}-`));
    state.demo = await startDemo({ port: 0, dataDir, ...options });
  });
  afterAll(async () => {
    await state.demo?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  afterEach(() => {
    state.shell?.close();
    state.shell = undefined;
  });
  return state;
}

/** Puts the code the person read (on the page or in the email) in place of the placeholder, which must be there exactly once. */
export function withCode(block: string, code: string): string {
  const assignment = `CODE=${CODE_PLACEHOLDER}`;
  expect(block.split(assignment), `the block sets ${assignment} once, for the reader to replace`).toHaveLength(2);
  return block.replace(assignment, `CODE=${code}`);
}

export { Shell };
