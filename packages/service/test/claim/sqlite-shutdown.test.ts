import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A host process that runs the ceremony on SQLite and then shuts down with `await service.close()`
 * must get past that await. Inside vitest something always keeps the event loop alive, so this runs
 * in a child process, as a real host would.
 */

const repo = resolve(import.meta.dirname, '../../../..');
const entry = pathToFileURL(join(repo, 'packages/service/src/index.ts')).href;

function runScript(source: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-shutdown-'));
  const file = join(dir, 'host.mts');
  writeFileSync(file, source);
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--conditions=@authmd/source', '--import', 'tsx', file], { cwd: repo, env: { ...process.env, AUTHMD_DB: join(dir, 'authmd.db') } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

function host(store: string): string {
  return `
import { createService, createMemoryStore, createSqliteStore, silentLogger } from ${JSON.stringify(entry)};
const service = await createService({
  issuer: 'http://127.0.0.1:9',
  scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
  store: ${store},
  logger: silentLogger,
  maintenanceIntervalSeconds: 0,
  mail: { outbox: true },
});
const response = await service.handler(new Request('http://127.0.0.1:9/agent/identity', {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'service_auth', login_hint: 'ada@example.com' }),
}), { clientIp: '192.0.2.1' });
console.log('registered', response.status);
await service.close();
console.log('closed');
`;
}

describe('shutting down a service', () => {
  it('on the memory store (control): await service.close() settles, and the process exits 0', async () => {
    const result = await runScript(host('createMemoryStore()'));
    expect(result.stdout, result.stderr).toContain('registered 200');
    expect(result.stdout, `exit ${result.code}; stderr: ${result.stderr}`).toContain('closed');
    expect(result.code).toBe(0);
  });

  it('on SQLite: await service.close() settles, and the process exits 0', async () => {
    const result = await runScript(host('createSqliteStore({ path: process.env.AUTHMD_DB })'));
    expect(result.stdout, result.stderr).toContain('registered 200');
    expect(result.stdout, `exit ${result.code}; stderr: ${result.stderr}`).toContain('closed');
    expect(result.code).toBe(0);
  });
});
