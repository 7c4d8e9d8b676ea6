import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { packagesWithInstallScripts } from './install-scripts.ts';

/**
 * `npm install` runs a dependency's install script only when the root package.json's `allowScripts` names it;
 * for any other it prints a warning (newer npm skips the script too). Every installed package with an install
 * script must be named there: better-sqlite3 has to compile, and a fresh install must print no such warning.
 */

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

describe('npm install', () => {
  it("names every dependency with an install script in package.json's allowScripts", () => {
    const allowScripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    const withScripts = packagesWithInstallScripts(join(repoRoot, 'node_modules'));
    expect([...withScripts.keys()], 'the native SQLite driver is among them').toContain('better-sqlite3');
    const uncovered = [...withScripts].filter(([name]) => allowScripts[name] !== true).map(([name, script]) => `${name} (${script})`);
    expect(uncovered, 'add each to allowScripts in the root package.json, after reviewing its script').toEqual([]);
  });
});
