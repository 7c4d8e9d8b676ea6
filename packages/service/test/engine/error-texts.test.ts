import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodes, protocolError, type ErrorCode } from '@authmd/protocol';
import { describe, expect, it } from 'vitest';

/**
 * Every agent-facing error description is "what happened" followed by the catalogue's hint, "what
 * to do next". Neither half may say the other's words again ("The user denied this agent. The user
 * denied this agent; stop polling."). Checked over every `protocolError(code, '…')` in the sources.
 */

const packagesDir = fileURLToPath(new URL('../../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'test' ? [] : sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every `protocolError('code', 'text' | `text`)` call: interpolations stand as one word. */
function calls(): { where: string; code: ErrorCode; what: string }[] {
  const found: { where: string; code: ErrorCode; what: string }[] = [];
  const pattern = /protocolError\(\s*'([a-z_]+)',\s*(['`])((?:\\.|(?!\2).)*)\2/gs;
  for (const file of ['service', 'provider', 'client', 'protocol'].flatMap((p) => sourceFiles(join(packagesDir, p, 'src')))) {
    for (const match of readFileSync(file, 'utf8').matchAll(pattern)) {
      found.push({ where: `${file.slice(packagesDir.length)}: ${match[3]!.slice(0, 40)}`, code: match[1] as ErrorCode, what: match[3]!.replace(/\$\{[^}]*\}/g, 'X') });
    }
  }
  return found;
}

/** Runs of `n` words that occur twice in the text (case and punctuation aside). */
function repeatedRuns(text: string, n = 4): string[] {
  const words = text.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
  const seen = new Set<string>();
  const repeated: string[] = [];
  for (let i = 0; i + n <= words.length; i++) {
    const run = words.slice(i, i + n).join(' ');
    if (seen.has(run)) repeated.push(run);
    seen.add(run);
  }
  return repeated;
}

describe('error descriptions say each thing once', () => {
  const found = calls();

  it('finds the engine\'s error calls', () => {
    expect(found.length).toBeGreaterThan(40);
    for (const { code } of found) expect(errorCodes).toContain(code);
  });

  it('no description repeats a run of four words (what happened + what to do next)', () => {
    const repeats = found
      .map(({ where, code, what }) => ({ where, repeated: repeatedRuns(protocolError(code, what).description) }))
      .filter((entry) => entry.repeated.length > 0);
    expect(repeats).toEqual([]);
  });

  it('the example of the issue reads once', () => {
    expect(protocolError('access_denied', 'The user denied this agent.').description).toBe('The user denied this agent. Stop polling; do not retry without asking the user.');
  });
});
