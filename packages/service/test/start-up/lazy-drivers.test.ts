import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The PostgreSQL driver and nodemailer take about 100 ms each to import; a process that uses neither
 * (SQLite or memory, mail to an outbox) must not load them, and one that does must still find them.
 */
describe('drivers loaded on first use', () => {
  const probe = fileURLToPath(new URL('./driver-probe.ts', import.meta.url));
  const run = (then: 'nothing' | 'postgres' | 'smtp') => {
    const child = spawnSync(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', probe, then], { encoding: 'utf8', timeout: 30_000 });
    expect(child.status, child.stderr).toBe(0);
    return JSON.parse(child.stdout) as { status: number; before: Record<string, boolean>; after: Record<string, boolean> };
  };

  it('a service on the memory store with an outbox serves a registration without loading pg or nodemailer', () => {
    expect(run('nothing')).toEqual({ status: 200, before: { pg: false, nodemailer: false }, after: { pg: false, nodemailer: false } });
  });

  it('making a PostgreSQL store loads pg, and only pg', () => {
    expect(run('postgres')).toEqual({ status: 200, before: { pg: false, nodemailer: false }, after: { pg: true, nodemailer: false } });
  });

  it('a service configured to mail through SMTP loads nodemailer, and only nodemailer', () => {
    expect(run('smtp')).toEqual({ status: 200, before: { pg: false, nodemailer: false }, after: { pg: false, nodemailer: true } });
  });
});
