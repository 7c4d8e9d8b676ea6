import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../../test-support/free-port.ts';
import { REPO_ROOT, runCli, runInProcess, tempStore } from './support.ts';

/** The CLI's surface without a service: help, version, usage errors, and a service that is not there. */
describe('authmd: usage, version and unreachable services', () => {
  const store = tempStore();
  afterAll(() => store.remove());
  const cli = (...args: string[]) => runCli(args, { store: store.path });
  /** `authmd <args>` in this process, through the same `run` that bin/authmd.js calls. */
  const runHere = (...args: string[]) => runInProcess(args, { store: store.path });

  it('--help lists the commands and the exit codes', { timeout: 30_000 }, async () => {
    const result = await runHere('--help');
    expect(result.code).toBe(0);
    for (const text of ['authmd login <url>', 'authmd fetch <url>', 'authmd status', 'authmd logout <url>', 'Exit codes:', '64', '69']) {
      expect(result.stdout).toContain(text);
    }
  });

  it('<command> --help prints that command usage', { timeout: 30_000 }, async () => {
    const result = await runHere('fetch', '--help');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: authmd fetch <url>/);
    expect(result.stdout).toContain('-H, --header');
  });

  it('--version prints the package version', { timeout: 30_000 }, async () => {
    const result = await cli('--version');
    expect(result).toMatchObject({ code: 0, stdout: 'authmd 0.1.0\n' });
  });

  it('`npx authmd --version` works from the repo root', { timeout: 30_000 }, async () => {
    const result = await runCli(['authmd', '--version'], { store: store.path, cwd: REPO_ROOT, command: ['npx', '--no-install'] });
    // npm itself may warn (about the environment's npm_config_* settings); authmd must say nothing.
    expect(result.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('npm warn'))).toEqual([]);
    expect(result).toMatchObject({ code: 0, stdout: 'authmd 0.1.0\n' });
  });

  const usageErrors: [string[], RegExp][] = [
    [['frobnicate'], /Unknown command "frobnicate"/],
    [['--frobnicate'], /Unknown option --frobnicate/],
    [[], /Usage:/],
    [['login'], /Missing <url>/],
    [['login', 'not a url'], /is not an http\(s\) URL/],
    [['login', 'ftp://example.com'], /is not an http\(s\) URL/],
    [['login', 'http://example.com', '--bogus'], /Unknown option --bogus\. See 'authmd login --help'/],
    [['login', 'http://example.com', '--email'], /--email needs a value/],
    [['login', 'http://example.com', '--json=yes'], /--json does not take a value/],
    [['fetch', 'http://example.com', '-Z'], /Unknown option -Z/],
    [['fetch', 'http://example.com', '-H', 'no colon'], /is not a header/],
    [['fetch', 'http://example.com', '-d', 'x', '-X', 'GET'], /cannot have a body/],
    [['status', 'extra'], /Unexpected argument "extra"/],
    [['logout', 'http://a.example', 'http://b.example'], /one <url> only/],
  ];

  // Each usage rule in this process: the parser and the report are the CLI's own, not a copy.
  it.each(usageErrors)('usage error %j → 64', async (args, message) => {
    const result = await runHere(...args);
    expect(result.code).toBe(64);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  // And as a process: the code reaches the shell as the exit status, the message stderr.
  it.concurrent.each([usageErrors[0]!, usageErrors[6]!])('usage error %j → exit 64 from the binary', { timeout: 30_000 }, async (args, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(64);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unreachable service → exit 69, one line, no stack trace', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const fetched = await cli('fetch', `http://127.0.0.1:${port}/api/notes`);
    expect(fetched.code).toBe(69);
    expect(fetched.stderr).toMatch(/^authmd: Could not reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\. Check the URL/);
    expect(fetched.stderr.trim().split('\n')).toHaveLength(1);

    const login = await runHere('login', `http://127.0.0.1:${port}`, '--json');
    expect(login.code).toBe(69);
    expect(login.stderr.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(login.stdout)).toMatchObject({ status: 'error', error: 'network_error', exit_code: 69 });
  });

  it('AUTHMD_DEBUG=1 adds the stack trace', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const result = await runInProcess(['fetch', `http://127.0.0.1:${port}/`], { store: store.path, env: { AUTHMD_DEBUG: '1' } });
    expect(result.code).toBe(69);
    expect(result.stderr).toMatch(/\n\s+at /);
  });
});
