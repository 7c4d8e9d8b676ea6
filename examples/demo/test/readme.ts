import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The root README's hand-run commands, as tests run them: only the addresses are put in. */

export const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
/** Where `npm start` serves the notes service, and the demo agent provider, by default. */
export const README_BASE = 'http://127.0.0.1:8787';
export const README_PROVIDER = 'http://127.0.0.1:8788';

export function readme(): string {
  return readFileSync(README, 'utf8');
}

/** The text of one README section, up to the next heading (bash comments start with one #). */
export function readmeSection(heading: string): string {
  const text = readme();
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, `README.md has a "${heading}" section`).toBeGreaterThan(0);
  const rest = text.slice(start + heading.length + 2);
  return rest.slice(0, rest.search(/^#{2,3} /m) >>> 0);
}

/** The bash blocks of one README section, in order. */
export function readmeBlocks(heading: string): string[] {
  return [...readmeSection(heading).matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/**
 * A README block pointed at the demo under test. Its URLs may name only the default addresses given
 * as keys of `bases` (npm start's), each replaced by the address of the server under test.
 */
export function pointAt(block: string, bases: Record<string, string>): string {
  const origins = new Set([...block.matchAll(/https?:\/\/[^/\s"'`\\]+/g)].map((m) => m[0]));
  for (const origin of origins) expect(Object.keys(bases), `the README talks to npm start at its default addresses only, not ${origin}`).toContain(origin);
  let pointed = block;
  for (const [from, to] of Object.entries(bases)) pointed = pointed.replaceAll(from, to);
  return pointed;
}

export function unescapeHtml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

/** The commands a page shows, by their `data-run` name, unescaped: exactly what a reader copies. */
export function pageCommands(html: string): Map<string, string> {
  return new Map([...html.matchAll(/<code data-run="([^"]+)">([\s\S]*?)<\/code>/g)].map((m) => [m[1]!, unescapeHtml(m[2]!)]));
}
