import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const LIFECYCLE = ['preinstall', 'install', 'postinstall'];

/** Every installed package's folder under `modules`, scoped and nested ones included. */
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

/** Each package under `modules` (a node_modules folder, nested ones included) with an install script: its name and the script. */
export function packagesWithInstallScripts(modules: string): Map<string, string> {
  const withScripts = new Map<string, string>();
  for (const dir of installedPackages(modules)) {
    const found = hasInstallScript(dir);
    if (found) withScripts.set(found.name, found.script);
  }
  return withScripts;
}
