// Loads one entry point of @authmd/client for the bins. Installed from npm, the package holds the built
// JavaScript only (dist/), and that is what runs, with plain node. In the authmd checkout, where src/
// sits beside this file and dist/ may be absent or stale, the TypeScript sources run instead, through
// the checkout's tsx and the "@authmd/source" export condition that points the workspace packages at
// their sources.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

/** Source-condition hook: what `node --conditions=@authmd/source` does, for the imports that follow. */
const SOURCE_CONDITION = `export async function resolve(specifier, context, next) {
  const conditions = context.conditions.includes('@authmd/source') ? context.conditions : [...context.conditions, '@authmd/source'];
  return next(specifier, { ...context, conditions });
}`;

/** `entry` is a path under src/ and dist/ without its extension, such as `cli/main`. */
export async function load(entry) {
  const source = new URL(`../src/${entry}.ts`, import.meta.url);
  if (!existsSync(source)) return import(new URL(`../dist/${entry}.js`, import.meta.url).href);
  const { register: registerTsx } = await import('tsx/esm/api'); // a devDependency of the checkout
  registerTsx();
  register(`data:text/javascript,${encodeURIComponent(SOURCE_CONDITION)}`);
  return import(source.href);
}
