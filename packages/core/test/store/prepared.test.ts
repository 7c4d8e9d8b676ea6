import { describe, expect, it } from 'vitest';
import { createStatementNames } from '../../src/store/postgres/prepared.ts';

describe('statement names', () => {
  it('gives one text one name, and stops naming new texts at its limit', () => {
    const statement = createStatementNames(2);
    const a = statement('SELECT 1', []);
    expect(a).toEqual({ text: 'SELECT 1', values: [], name: expect.any(String) });
    expect(statement('SELECT 1', [1]).name).toBe(a.name);
    const b = statement('SELECT 2');
    expect(b.name).not.toBe(a.name);
    // Past the limit a text goes unnamed (parsed at each call), and the named ones keep their names.
    expect(statement('SELECT 3').name).toBeUndefined();
    expect(statement('SELECT 2').name).toBe(b.name);
  });

  it('leaves statements that run once unnamed (a migration\'s DDL)', () => {
    const statement = createStatementNames();
    expect(statement('CREATE TABLE t (id TEXT PRIMARY KEY)').name).toBeUndefined();
    expect(statement('ALTER TABLE t ADD COLUMN n BIGINT').name).toBeUndefined();
    for (const text of ['SELECT 1', 'INSERT INTO t (id) VALUES ($1)', 'UPDATE t SET n = 1', 'DELETE FROM t', 'WITH x AS (SELECT 1) SELECT * FROM x']) {
      expect(statement(text).name).toMatch(/^authmd_/);
    }
  });
});
