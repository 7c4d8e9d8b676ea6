import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * `npm install` runs a dependency's install script only when the root package.json's `allowScripts` names it;
 * for any other it prints a warning (newer npm skips the script too). Every installed package with an install
 * script must be named there: better-sqlite3 has to compile, and a fresh install must print no such warning.
 */

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const LIFECYCLE = ['preinstall', 'install', 'postinstall'];

function* installedPackages(modules: string): Generator<string> {
  if (!existsSync(modules)) return;
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(modules, entry.name);
    if (entry.name.startsWith('@')) {
      for (const scoped of readdirSync(path)) yield* packageAndNested(join(path, scoped));
    } else if (entry.isDirectory()) {
      yield* packageAndNested(path);
    }
  }
}

function* packageAndNested(dir: string): Generator<string> {
  if (existsSync(join(dir, 'package.json'))) yield dir;
  yield* installedPackages(join(dir, 'node_modules'));
}

function hasInstallScript(dir: string): { name: string; script: string } | undefined {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; scripts?: Record<string, string> };
  const name = manifest.name ?? dir;
  for (const stage of LIFECYCLE) if (manifest.scripts?.[stage]) return { name, script: `${stage}: ${manifest.scripts[stage]}` };
  // npm runs `node-gyp rebuild` for a package with a binding.gyp and no install script of its own.
  if (existsSync(join(dir, 'binding.gyp'))) return { name, script: 'install: node-gyp rebuild (implicit)' };
  return undefined;
}

describe('npm install', () => {
  it("names every dependency with an install script in package.json's allowScripts", () => {
    const allowScripts = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    const withScripts = new Map<string, string>();
    for (const dir of installedPackages(join(repoRoot, 'node_modules'))) {
      const found = hasInstallScript(dir);
      if (found) withScripts.set(found.name, found.script);
    }
    expect([...withScripts.keys()], 'the native SQLite driver is among them').toContain('better-sqlite3');
    const uncovered = [...withScripts].filter(([name]) => allowScripts[name] !== true).map(([name, script]) => `${name} (${script})`);
    expect(uncovered, 'add each to allowScripts in the root package.json, after reviewing its script').toEqual([]);
  });
});
