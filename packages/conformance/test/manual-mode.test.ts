import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { startDemo } from '../../../examples/demo/src/start.ts';
import { AuthmdPagesHuman } from '../src/human/authmd-pages.ts';

/**
 * `authmd check --human manual` as an operator of another service meets it: the suite prints what
 * to do on the service's pages and waits on the terminal. Here the "person" follows the printed
 * instructions on the demo's pages (over HTTP) and types the page's code into the check's stdin.
 */

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const authmd = join(repoRoot, 'packages', 'client', 'bin', 'authmd.js');

it('prints the instructions, takes the code typed on stdin, and the read-back check passes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-check-manual-'));
  const demo = await startDemo({ port: 0, dataDir, store: 'memory' });
  const child = spawn(process.execPath, [authmd, 'check', demo.url, '--only', 'ceremony.read-back', '--human', 'manual', '--no-provider'], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  try {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const instructions = new Promise<RegExpExecArray>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        const match = /Open (\S+), sign in as (\S+), press Authorize, then type the 6-digit code the page shows and press Enter:/.exec(stderr);
        if (match) resolve(match);
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

    const [, link, email] = await instructions;
    child.stdin.write('not a code\n');
    const code = await new AuthmdPagesHuman(demo.url).readBack(link!, email!);
    child.stdin.write(`${code}\n`);

    expect(await exited, `${stdout}\n${stderr}`).toBe(0);
    expect(stderr).toContain('the person: manual');
    expect(stderr).toMatch(/"not a code" is not 6 digits\. Type the 6-digit code the page shows and press Enter:/);
    expect(stdout).toMatch(/^PASS {2}ceremony\.read-back {2}/m);
    expect(stdout).toMatch(/\n1 check against .*: 1 passed, 0 failed, 0 skipped/);
  } finally {
    child.kill();
    await demo.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);

it('v0.1 (issue 12): asks for the code from the claim email, and the emailed-code claim passes with what is typed', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-check-manual-v01-'));
  const demo = await startDemo({ port: 0, dataDir, store: 'memory' });
  const child = spawn(process.execPath, [authmd, 'check', demo.url, '--only', 'ceremony.v01-email-claim', '--human', 'manual', '--no-provider'], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  try {
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const instructions = new Promise<RegExpExecArray>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        const match = /Open the email the service just sent to (\S+) \(it asks to let an agent act for you\), then type the 6-digit code it gives .* and press Enter:/.exec(stderr);
        if (match) resolve(match);
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));

    const [, email] = await instructions;
    // The operator reads the email (here: the demo's development mailbox) and types its code.
    const code = await new AuthmdPagesHuman(demo.url).emailedCode(email!);
    child.stdin.write(`${code}\n`);

    expect(await exited, `${stdout}\n${stderr}`).toBe(0);
    expect(stdout).toMatch(/^PASS {2}ceremony\.v01-email-claim {2}/m);
    expect(stdout).toMatch(/\n1 check against .*: 1 passed, 0 failed, 0 skipped/);
  } finally {
    child.kill();
    await demo.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, 60_000);
