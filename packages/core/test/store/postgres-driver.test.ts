import { describe, expect, it } from 'vitest';
import { loadPg, pgDriver } from '../../src/store/postgres/driver.ts';

describe('the pg driver, loaded on first use', () => {
  it('says what to install when pg is missing (an optional peer of @authmd/core)', () => {
    const missing = () => {
      throw Object.assign(new Error("Cannot find module 'pg'"), { code: 'MODULE_NOT_FOUND' });
    };
    expect(() => loadPg(missing)).toThrow('The PostgreSQL store needs the pg package, which is not installed: run `npm install pg` (version 8).');
  });

  it('passes on any other failure to load it as it is', () => {
    const broken = () => {
      throw new SyntaxError('Unexpected token');
    };
    expect(() => loadPg(broken)).toThrow(SyntaxError);
  });

  it('gives the installed driver, the same module every time', () => {
    const driver = pgDriver();
    expect(typeof driver.Pool).toBe('function');
    expect(pgDriver()).toBe(driver);
  });
});
