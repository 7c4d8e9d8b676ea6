import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { groups } from '../src/check.ts';
import { catalogue } from '../src/checks/index.ts';

const negativeDir = fileURLToPath(new URL('./negative/', import.meta.url));
const negativeTests = readdirSync(negativeDir)
  .filter((name) => name.endsWith('.test.ts'))
  .map((name) => readFileSync(`${negativeDir}${name}`, 'utf8'))
  .join('\n');

describe('the check catalogue', () => {
  it('has checks in every group, with unique ids named <group>.<name>, a title and a reference', () => {
    expect(new Set(catalogue.map((check) => check.group))).toEqual(new Set(groups));
    expect(new Set(catalogue.map((check) => check.id)).size).toBe(catalogue.length);
    for (const check of catalogue) {
      expect(check.id, check.id).toMatch(new RegExp(`^${check.group}\\.[a-z0-9-]+$`));
      expect(check.title.length, check.id).toBeGreaterThan(10);
      expect(check.ref, check.id).toMatch(/RFC \d+|auth\.md|profile|protocol-reference|AUTH\.md|draft|OAuth/);
    }
  });

  it('has a negative test for every check: a broken service that makes it fail', () => {
    const missing = catalogue.filter((check) => !negativeTests.includes(`runCheck(service, '${check.id}'`)).map((check) => check.id);
    expect(missing).toEqual([]);
  });
});
