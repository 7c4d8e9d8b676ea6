import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Human } from './human.ts';
import { CliProcess, handoffOf, InProcessCli, runCli, runInProcess, startTestDemo, tempStore } from './support.ts';

/**
 * When a person must approve the agent: the CLI's hand-off, its wait in both directions (the test is
 * the person, at the demo's pages over HTTP, and types into the CLI's stdin), a denial, Ctrl+C and
 * --no-wait. Against the real demo. The waits run as real processes (stdin, Ctrl+C, exit codes); the
 * commands that do not wait mostly run in this process (`runInProcess`).
 */
describe('authmd: the claim hand-off and the wait for the person', () => {
  let running: Awaited<ReturnType<typeof startTestDemo>>;
  let store: ReturnType<typeof tempStore>;
  let base: string;
  let api: string;
  const live: CliProcess[] = [];
  const start = (...args: string[]) => {
    const cli = new CliProcess(args, { store: store.path });
    live.push(cli);
    return cli;
  };
  const here = (...args: string[]) => runInProcess(args, { store: store.path });
  const status = async () => JSON.parse((await here('status', '--json')).stdout).registrations;

  beforeAll(async () => {
    running = await startTestDemo();
    base = running.demo.url;
    api = `${base}/api/notes`;
  });
  afterAll(() => running.close());
  beforeEach(() => {
    store = tempStore();
  });
  afterEach(() => {
    for (const cli of live.splice(0)) if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    store.remove();
  });

  it('login --email --no-wait → exit 2 with the link, a QR code and --json', { timeout: 30_000 }, async () => {
    const result = await runCli(['login', base, '--email', 'nowait@example.com', '--no-wait', '--json'], { store: store.path });
    expect(result.code).toBe(2);
    const { link } = handoffOf(result.stderr);
    expect(link.startsWith(`${base}/claim?token=`)).toBe(true);
    expect(result.stderr).toMatch(/[▄▀█]{5,}/); // the terminal QR code
    expect(result.stderr).toContain('Not waiting (--no-wait)');
    const claim = JSON.parse(result.stdout);
    expect(claim).toMatchObject({ status: 'claim_required', issuer: base, verification_uri: link, read_back: true, user_code: expect.stringMatching(/^\d{6}$/) });
    expect(claim).not.toHaveProperty('claim_token');
    expect(result.stdout + result.stderr).not.toContain('clm_'); // the claim token stays in the process

    const other = tempStore();
    const fetched = await runInProcess(['fetch', api, '--email', 'nowait2@example.com', '--no-wait'], { store: other.path }).finally(() => other.remove());
    expect(fetched.code).toBe(2);
    expect(fetched.stdout).toBe(''); // no body: the request was never sent with credentials
    expect(handoffOf(fetched.stderr).link.startsWith(`${base}/claim?token=`)).toBe(true);
  });

  it('read-back: the person reads the page code into stdin → exit 0, claimed', { timeout: 30_000 }, async () => {
    const cli = start('login', base, '--email', 'ada@example.com');
    await cli.waitFor(/type it here and press Enter/);
    const { link } = handoffOf(cli.stderr);
    expect(cli.stderr).toMatch(/[▄▀█]{5,}/);
    await cli.waitFor(/Waiting for the approval… \(Ctrl\+C to stop\)/); // the progress line (stderr is not a TTY)

    const human = new Human(base, 'ada@example.com');
    const code = await human.authorize(await human.openClaimLink(link));
    cli.type('12345\n'); // a typo first: not six digits
    await cli.waitFor(/"12345" is not a six-digit code/);
    cli.type(`${code.slice(0, 3)} ${code.slice(3)}\n`);

    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/service_auth, linked to a person/);
    expect(result.stdout).toContain('notes.read notes.write');
    expect(await status()).toEqual([expect.objectContaining({ issuer: base, registration_type: 'service_auth', claimed: true })]);

    const posted = await here('fetch', api, '-d', '{"text":"from the CLI"}');
    expect(posted.code, posted.stderr).toBe(0);
    expect(JSON.parse(posted.stdout)).toMatchObject({ note: { text: 'from the CLI' } });
  });

  it('read-back: a poll that finds the tokens handed over to the code check does not end the wait', { timeout: 30_000 }, async () => {
    // The code check completes the claim (the service hands the tokens over to it), then exchanges its
    // identity assertion. Held here for 2.5 s, that exchange lets the type-in direction's poll (every
    // second) reach the service meanwhile and be told the tokens were already handed over: a poll in
    // flight as the person presses Enter, on a loaded machine.
    const realFetch = globalThis.fetch;
    let holdExchange = false;
    globalThis.fetch = async (input, init) => {
      if (holdExchange && typeof init?.body === 'string' && init.body.includes('grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer')) {
        holdExchange = false;
        await new Promise((resolve) => setTimeout(resolve, 2500));
      }
      return realFetch(input, init);
    };
    try {
      const cli = new InProcessCli(['login', base, '--email', 'grace@example.com'], { store: store.path, terminal: true });
      await cli.waitFor(/type it here and press Enter/);
      const human = new Human(base, 'grace@example.com');
      const code = await human.authorize(await human.openClaimLink(handoffOf(cli.stderr).link));
      holdExchange = true;
      cli.type(`${code}\n`);
      const result = await cli.done;
      expect(result.code, result.stderr).toBe(0);
      expect(holdExchange).toBe(false); // the exchange was held
      expect(result.stdout).toMatch(/service_auth, linked to a person/);
      expect(await status()).toEqual([expect.objectContaining({ issuer: base, registration_type: 'service_auth', claimed: true })]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it('type-in: the person types the CLI code on the page → the CLI finishes by itself', { timeout: 30_000 }, async () => {
    const cli = start('login', base, '--email', 'grace@example.com', '--json');
    await cli.waitFor(/type this code on the page: \d{6}/);
    const { link, userCode } = handoffOf(cli.stderr);

    const human = new Human(base, 'grace@example.com');
    await human.typeAgentCode(await human.openClaimLink(link), userCode!);

    const result = await cli.done; // stdin stays open: the poll alone ends the wait
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'ready', issuer: base, registration_type: 'service_auth', claimed: true, scope: 'notes.read notes.write' });
    expect(await status()).toEqual([expect.objectContaining({ claimed: true })]);
  });

  it('fetch needing a person: hand-off, the page code on stdin, then the request goes through', { timeout: 30_000 }, async () => {
    const cli = start('fetch', api, '--email', 'lin@example.com', '-X', 'POST', '-d', '{"text":"after the claim"}');
    await cli.waitFor(/type it here and press Enter/);
    const human = new Human(base, 'lin@example.com');
    cli.type(`${await human.authorize(await human.openClaimLink(handoffOf(cli.stderr).link))}\n`);
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ note: { text: 'after the claim' } });
    expect(result.stderr).toContain('Approved: service_auth registration, scopes notes.read notes.write.');
  });

  it('a denied claim → exit 3', { timeout: 30_000 }, async () => {
    const cli = start('login', base, '--email', 'mallory@example.com');
    await cli.waitFor(/type this code on the page/);
    const human = new Human(base, 'mallory@example.com');
    await human.deny(await human.openClaimLink(handoffOf(cli.stderr).link));
    const result = await cli.done;
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/authmd: .*access_denied/);
    expect(result.stderr.trim().split('\n').at(-1)).toMatch(/^authmd: /);
  });

  it('Ctrl+C while waiting → exit 130 and a clear message', { timeout: 30_000 }, async () => {
    const cli = start('login', base, '--email', 'quitter@example.com');
    await cli.waitFor(/Waiting for the approval/);
    cli.child.kill('SIGINT');
    const result = await cli.done;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/authmd: Stopped waiting; the agent was not approved/);
  });

  it('an anonymous registration made by fetch, then login --email --no-wait → exit 2 (nothing linked), the anonymous registration kept', { timeout: 30_000 }, async () => {
    const fetched = await here('fetch', api);
    expect(fetched.code, fetched.stderr).toBe(0);
    const [anonymous] = await status();
    expect(anonymous).toMatchObject({ issuer: base, registration_type: 'anonymous', claimed: false });

    for (const extra of [[], ['--json']]) {
      const noWait = await here('login', api, '--email', 'yan@example.com', '--no-wait', ...extra);
      expect(noWait.code, noWait.stderr).toBe(2);
      expect(noWait.stderr).toContain(`linking the agent to yan@example.com needs a person's approval: run without --no-wait`);
      if (extra.length) expect(JSON.parse(noWait.stdout)).toMatchObject({ status: 'ready', registration_type: 'anonymous', claimed: false });
      else expect(noWait.stdout).toMatch(/anonymous, not linked to a person/);
    }
    expect(await status()).toEqual([expect.objectContaining({ registration_id: anonymous.registration_id, registration_type: 'anonymous', claimed: false })]);
  });

  it('an anonymous registration, then login --email: registers anew by email and is claimed', { timeout: 30_000 }, async () => {
    expect((await here('login', base)).code).toBe(0);
    const noWait = await here('login', base, '--email', 'zoe@example.com', '--no-wait');
    expect(noWait.code).toBe(2);
    expect(await status()).toEqual([expect.objectContaining({ registration_type: 'anonymous' })]); // kept

    const cli = start('login', base, '--email', 'zoe@example.com');
    await cli.waitFor(/type it here and press Enter/);
    expect(cli.stderr).toContain('registering anew for zoe@example.com');
    const human = new Human(base, 'zoe@example.com');
    cli.type(`${await human.authorize(await human.openClaimLink(handoffOf(cli.stderr).link))}\n`);
    const result = await cli.done;
    expect(result.code, result.stderr).toBe(0);
    expect(await status()).toEqual([expect.objectContaining({ registration_type: 'service_auth', claimed: true })]);
  });
});
