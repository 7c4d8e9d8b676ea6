import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@authmd/service';
import { afterAll, describe, expect, it } from 'vitest';
import { startSmtpReceiver, type SmtpReceiver } from '../../../packages/service/test/browser/smtp.ts';
import { SMTP_TIMEOUTS, smtpMailOption } from '../src/mail-settings.ts';
import { readSettings, type DemoSettings } from '../src/settings.ts';
import { startDemo, type RunningDemo } from '../src/start.ts';

/**
 * Issue 14: `npm start` sends its mail through the SMTP server AUTHMD_SMTP_URL names, as AUTHMD_MAIL_FROM
 * (or a default). The settings are read and refused in one line that never repeats the password; the
 * demo, in its own process and in-process, sends a v0.1 claim code through a real SMTP receiver on
 * 127.0.0.1 that requires the URL's (percent-decoded) credentials; a server that is down is a 503 the
 * agent retries, and the retry's mail arrives once the server is back.
 */

import { startMain, waitFor } from './npm-start.ts';
const tempDirs: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-mail-env-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.allSettled(cleanups.map((cleanup) => cleanup()));
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const EXAMPLE = 'Example: AUTHMD_SMTP_URL=smtp://user:password@smtp.example.com:587 npm start';
const PASSWORD = 'hunter2-s3cret';

function smtpOf(env: Record<string, string>): DemoSettings['smtp'] {
  const outcome = readSettings(env, '/');
  if (!outcome.ok) throw new Error(outcome.message);
  return outcome.settings.smtp;
}

function refusal(env: Record<string, string>): string {
  const outcome = readSettings(env, '/');
  expect(outcome.ok, JSON.stringify(env)).toBe(false);
  return (outcome as { message: string }).message;
}

describe('AUTHMD_SMTP_URL and AUTHMD_MAIL_FROM in readSettings', () => {
  it('unset: no SMTP, so the development mailbox stays the default', () => {
    expect(smtpOf({})).toBeUndefined();
    expect(smtpOf({ AUTHMD_SMTP_URL: '  ' })).toBeUndefined();
    expect(smtpOf({ AUTHMD_MAIL_FROM: 'Notes <no-reply@notes.example>' }), 'a From alone sends nothing').toBeUndefined();
  });

  it('smtp:// on this machine: host, port, no TLS requirement, the credentials, the password masked in the location', () => {
    expect(smtpOf({ AUTHMD_SMTP_URL: `smtp://mailer:${PASSWORD}@127.0.0.1:2525` })).toEqual({
      transport: { host: '127.0.0.1', port: 2525, secure: false, auth: { user: 'mailer', pass: PASSWORD }, ...SMTP_TIMEOUTS },
      from: 'authmd demo notes <no-reply@localhost>',
      location: 'smtp://mailer:****@127.0.0.1:2525',
    });
  });

  it('smtps:// defaults to port 465 with TLS from the start; smtp:// to 587; no user means no auth', () => {
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtps://mailer:pw@mail.example.com' })).toMatchObject({
      transport: { host: 'mail.example.com', port: 465, secure: true, auth: { user: 'mailer', pass: 'pw' } },
      location: 'smtps://mailer:****@mail.example.com:465',
    });
    const plain = smtpOf({ AUTHMD_SMTP_URL: 'smtp://mail.example.com/' })!;
    expect(plain.transport).toEqual({ host: 'mail.example.com', port: 587, secure: false, ...SMTP_TIMEOUTS });
    expect(plain.location).toBe('smtp://mail.example.com:587');
    expect(smtpOf({ AUTHMD_SMTP_URL: 'SMTP://mail.example.com:25' })!.transport).toMatchObject({ port: 25, secure: false });
  });

  it('percent-decodes the user name and password (@ and : inside), and then the From is the user when it is an address', () => {
    const smtp = smtpOf({ AUTHMD_SMTP_URL: 'smtp://me%40notes.example:p%40ss%3Aw%2Frd%25@mail.example.com:587' })!;
    expect(smtp.transport.auth).toEqual({ user: 'me@notes.example', pass: 'p@ss:w/rd%' });
    expect(smtp.from).toBe('authmd demo notes <me@notes.example>');
    expect(smtp.location).toBe('smtp://me%40notes.example:****@mail.example.com:587');
    // A raw @ in the password: the last @ ends the user info (WHATWG URL), so it still means what it says.
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtp://u:p@ss@mail.example.com:25' })!.transport.auth).toEqual({ user: 'u', pass: 'p@ss' });
  });

  it('requires STARTTLS before a password goes to another machine, not to this one or without a password', () => {
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtp://u:p@mail.example.com' })!.transport.requireTLS).toBe(true);
    for (const host of ['127.0.0.1', '127.0.0.53', 'localhost', '[::1]']) {
      expect(smtpOf({ AUTHMD_SMTP_URL: `smtp://u:p@${host}:2525` })!.transport.requireTLS, host).toBeUndefined();
    }
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtp://mail.example.com' })!.transport.requireTLS).toBeUndefined();
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtps://u:p@mail.example.com' })!.transport.requireTLS, 'TLS from the start already').toBeUndefined();
  });

  it('an IPv6 host goes to the socket without brackets, and stays bracketed in the location', () => {
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtp://[::1]:2525' })).toMatchObject({ transport: { host: '::1', port: 2525 }, location: 'smtp://[::1]:2525' });
    expect(smtpOf({ AUTHMD_SMTP_URL: 'smtps://u:p@[2001:db8::25]' })).toMatchObject({
      transport: { host: '2001:db8::25', port: 465, secure: true },
      location: 'smtps://u:****@[2001:db8::25]:465',
    });
  });

  it('AUTHMD_MAIL_FROM: an address or a name with one; anything else, a header break included, is refused', () => {
    const url = 'smtp://mailer%40example.com:pw@127.0.0.1:2525';
    expect(smtpOf({ AUTHMD_SMTP_URL: url, AUTHMD_MAIL_FROM: 'no-reply@notes.example' })!.from).toBe('no-reply@notes.example');
    expect(smtpOf({ AUTHMD_SMTP_URL: url, AUTHMD_MAIL_FROM: ' "Notes, Inc." <no-reply@notes.example> ' })!.from).toBe('"Notes, Inc." <no-reply@notes.example>');
    for (const from of ['notes', 'Notes <notes>', 'a@b <c@d', 'no-reply@notes.example\r\nBcc: victim@example.com', '<a@b> <c@d>']) {
      expect(refusal({ AUTHMD_SMTP_URL: url, AUTHMD_MAIL_FROM: from }), from).toBe(
        `AUTHMD_MAIL_FROM must be an email address, or a name and an address in <> (got ${JSON.stringify(from.trim())}). Example: AUTHMD_MAIL_FROM='Notes <no-reply@notes.example>' npm start`,
      );
    }
  });

  it('refuses a bad URL in one line naming the variable, what is wrong and an example, never the password', () => {
    const cases: [string, string][] = [
      [`http://u:${PASSWORD}@mail.example.com`, 'must start with smtp:// (STARTTLS when the server offers it) or smtps:// (TLS from the start)'],
      [`u:${PASSWORD}@mail.example.com:587`, 'must start with smtp:// (STARTTLS when the server offers it) or smtps:// (TLS from the start)'],
      ['mail.example.com:587', 'must start with smtp:// (STARTTLS when the server offers it) or smtps:// (TLS from the start)'],
      ['smtp://', 'names no host: write smtp://host[:port]'],
      ['smtp:', 'names no host: write smtp://host[:port]'],
      [`smtp:u:${PASSWORD}@mail.example.com`, 'names no host: write smtp://host[:port]'],
      [`smtp://u:${PASSWORD}@:25`, 'names no host: write smtp://host[:port]'],
      ['smtps:///mail', 'names no host: write smtps://host[:port]'],
      [`smtp://u:${PASSWORD}@mail.example.com:0`, 'has a port outside 1 to 65535: give one in that range or leave it out (587 for smtp://)'],
      [`smtp://u:${PASSWORD}@mail.example.com:65536`, 'has a port outside 1 to 65535: give one in that range or leave it out (587 for smtp://)'],
      [`smtps://u:${PASSWORD}@mail.example.com:99999999`, 'has a port outside 1 to 65535: give one in that range or leave it out (465 for smtps://)'],
      [`smtp://u:${PASSWORD}@mail.example.com:abc`, 'is not a URL: check the host and the port, and percent-encode / ? # in the user name or password (%2F %3F %23)'],
      [`smtp://u:${PASSWORD}/x@mail.example.com`, 'is not a URL: check the host and the port, and percent-encode / ? # in the user name or password (%2F %3F %23)'],
      [`smtp://u:${PASSWORD}@mail example.com`, 'is not a URL: check the host and the port, and percent-encode / ? # in the user name or password (%2F %3F %23)'],
      [`smtp://u:${PASSWORD}@mail.example.com:587/outbound`, 'has a path: an SMTP URL ends after the host and port (percent-encode / in a password as %2F)'],
      [`smtp://u:${PASSWORD}@mail.example.com?tls=off`, 'has a query (?…), which the demo does not read: an SMTP URL ends after the host and port (percent-encode ? in a password as %3F)'],
      [`smtp://u:${PASSWORD}@mail.example.com?`, 'has a query (?…), which the demo does not read: an SMTP URL ends after the host and port (percent-encode ? in a password as %3F)'],
      [`smtp://u:${PASSWORD}@mail.example.com#x`, 'has a fragment (#…): an SMTP URL ends after the host and port (percent-encode # in a password as %23)'],
      [`smtp://u:${PASSWORD}@mail.example.com:465`, 'names port 465, which speaks TLS from the start: use smtps:// for it (smtp:// is for 587 or 25, with STARTTLS)'],
      [`smtps://u:${PASSWORD}@mail.example.com:587`, 'names port 587, which starts in plain text and upgrades with STARTTLS: use smtp:// for it (smtps:// is for 465)'],
      [`smtp://u:${PASSWORD}%zz@mail.example.com`, 'has a malformed percent-escape in the user name or password (% must be followed by two hex digits; write % itself as %25)'],
      ['smtp://mailer@mail.example.com', 'has a user name but no password: smtp://user:password@host'],
      [`smtp://:${PASSWORD}@mail.example.com`, 'has a password but no user name: smtp://user:password@host'],
    ];
    for (const [url, problem] of cases) {
      const message = refusal({ AUTHMD_SMTP_URL: url });
      expect(message, url).toBe(`AUTHMD_SMTP_URL ${problem}. ${EXAMPLE}`);
      expect(message, 'one line').not.toContain('\n');
      expect(message, 'never the password').not.toContain(PASSWORD);
      expect(message, 'never the password').not.toContain('hunter2');
    }
  });

  it('checks the other variables first, as before: a bad PORT is still what is named', () => {
    expect(refusal({ PORT: 'abc', AUTHMD_SMTP_URL: 'http://x' })).toMatch(/^PORT must be/);
  });
});

// ——— the demo sending real mail ———

function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** A v0.1 registration (an API key with notes.read) and its claim token. */
async function registerV01(base: string): Promise<{ key: string; claimToken: string }> {
  const response = await postJson(`${base}/agent/auth`, { type: 'anonymous', requested_credential_type: 'api_key' });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { credential: string; claim_token: string };
  return { key: body.credential, claimToken: body.claim_token };
}

/** Asks for the v0.1 claim: the service emails `email` a code. */
function startClaim(base: string, claimToken: string, email: string): Promise<Response> {
  return postJson(`${base}/agent/auth/claim`, { claim_token: claimToken, email });
}

/** The agent sends the code from the email; the same API key then writes. */
async function completeAndWrite(base: string, registration: { key: string; claimToken: string }, code: string): Promise<void> {
  const completed = await postJson(`${base}/agent/auth/claim/complete`, { claim_token: registration.claimToken, otp: code });
  const body = await completed.text();
  expect(completed.status, body).toBe(200);
  expect(body).toContain('"status":"claimed"');
  const note = await fetch(`${base}/api/notes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${registration.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'mailed' }),
  });
  expect(note.status).toBe(201);
}

function claimCodeIn(text: string): string {
  const code = /read this code to your agent: (\d{6})/.exec(text)?.[1];
  expect(code, text).toMatch(/^\d{6}$/);
  return code!;
}

/** A free port on 127.0.0.1 with nothing listening on it (a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`);
  return { lines, info: record('info'), warn: record('warn'), error: record('error') };
}

/** The demo as main.ts starts it from these settings (the mail option from AUTHMD_SMTP_URL), in this process. */
async function demoFromEnv(env: Record<string, string>, logger: Logger): Promise<RunningDemo> {
  const smtp = smtpOf(env);
  expect(smtp).toBeDefined();
  const demo = await startDemo({ port: 0, dataDir: tempDir(), store: 'memory', logger, mail: smtpMailOption(smtp!) });
  cleanups.push(() => demo.close());
  return demo;
}

describe('the demo with AUTHMD_SMTP_URL, in this process', () => {
  it('an SMTP server that is down: the claim is a 503 with Retry-After, nothing is lost silently, and the retry is mailed once it is up', async () => {
    const port = await closedPort();
    const logger = recordingLogger();
    const demo = await demoFromEnv({ AUTHMD_SMTP_URL: `smtp://mailer:${PASSWORD}@127.0.0.1:${port}` }, logger);
    const registration = await registerV01(demo.url);

    const down = await startClaim(demo.url, registration.claimToken, 'ada@example.com');
    const body = await down.text();
    expect(down.status, body).toBe(503);
    expect(down.headers.get('retry-after')).toBe('60');
    expect(body).toContain('temporarily_unavailable');
    expect(logger.lines.join('\n')).toContain('sending a claim email failed');
    expect(logger.lines.join('\n'), 'the log never has the password').not.toContain(PASSWORD);

    const smtp = await startSmtpReceiver({ port, auth: { user: 'mailer', pass: PASSWORD } });
    cleanups.push(() => smtp.close());
    const retried = await startClaim(demo.url, registration.claimToken, 'ada@example.com');
    expect(retried.status, await retried.clone().text()).toBe(200);
    const message = await smtp.waitForMessage('ada@example.com');
    expect(message.authenticatedAs).toBe('mailer');
    await completeAndWrite(demo.url, registration, claimCodeIn(message.text));
    expect(smtp.messages, 'one message: the failed send was not queued and sent later').toHaveLength(1);
  });

  it('credentials the server refuses: a 503, and the log names the failure without the password', async () => {
    const smtp = await startSmtpReceiver({ auth: { user: 'mailer', pass: 'the-right-one' } });
    cleanups.push(() => smtp.close());
    const logger = recordingLogger();
    const demo = await demoFromEnv({ AUTHMD_SMTP_URL: `smtp://mailer:${PASSWORD}@127.0.0.1:${smtp.port}` }, logger);
    const registration = await registerV01(demo.url);
    const refused = await startClaim(demo.url, registration.claimToken, 'ada@example.com');
    expect(refused.status).toBe(503);
    expect(smtp.messages).toHaveLength(0);
    const log = logger.lines.join('\n');
    expect(log).toMatch(/sending a claim email failed.*(Invalid login|535)/);
    expect(log).not.toContain(PASSWORD);
  });

  it('serves no /dev/mailbox, and the home page does not send people there: the codes are not readable on the web', async () => {
    const demo = await demoFromEnv({ AUTHMD_SMTP_URL: `smtp://127.0.0.1:${await closedPort()}` }, recordingLogger());
    expect((await fetch(`${demo.url}/dev/mailbox`)).status).toBe(404);
    expect((await fetch(`${demo.url}/dev/mailbox.json`)).status).toBe(404);
    const home = await (await fetch(`${demo.url}/`)).text();
    expect(home).not.toContain('/dev/mailbox');
    expect(home).not.toContain('development mailbox');
    expect(home).toContain('this demo sends it through its SMTP server (AUTHMD_SMTP_URL)');
  });
});

describe('npm start with AUTHMD_SMTP_URL (main.ts in its own process)', () => {
  it('mails the v0.1 claim code through the server, logged in with the URL\'s percent-decoded credentials, from the user\'s address', async () => {
    const user = 'demo@notes.test';
    const pass = `p@ss:${PASSWORD}`;
    const smtp: SmtpReceiver = await startSmtpReceiver({ auth: { user, pass } });
    cleanups.push(() => smtp.close());
    const url = `smtp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${smtp.port}`;
    const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_SMTP_URL: url });
    try {
      const [, base] = await waitFor(() => /Home page\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(main.output().stdout), main.exited, 'home page URL');
      const { stdout } = main.output();
      expect(stdout).toContain(`Mail            smtp://demo%40notes.test:****@127.0.0.1:${smtp.port}   (sign-in and claim codes are emailed through this server, from authmd demo notes <demo@notes.test>)`);
      expect(stdout).not.toContain('Dev mailbox');
      expect(stdout).toContain('with the code from the email');

      const registration = await registerV01(base!);
      const started = await startClaim(base!, registration.claimToken, 'Ada@Example.com');
      expect(started.status, await started.clone().text()).toBe(200);
      const message = await smtp.waitForMessage('ada@example.com');
      expect(message.to).toEqual(['ada@example.com']);
      expect(message.from, 'the envelope sender: the default From, the SMTP user').toBe(user);
      expect(message.raw).toMatch(/^From: authmd demo notes <demo@notes\.test>\r?$/m);
      expect(message.authenticatedAs).toBe(user);
      expect(message.subject).toMatch(/Your code to let an agent use authmd demo notes: \d{6}/);
      await completeAndWrite(base!, registration, claimCodeIn(message.text));

      const { stdout: out, stderr } = main.output();
      for (const text of [out, stderr]) {
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain(encodeURIComponent(pass));
      }
    } finally {
      main.child.kill('SIGTERM');
    }
    expect(await main.exited).toBe(0);
  });

  it('exits 1 with one line naming AUTHMD_SMTP_URL for a bad URL: no stack trace, no password', async () => {
    const main = startMain({ PORT: '0', AUTHMD_DATA_DIR: tempDir(), AUTHMD_SMTP_URL: `smtp://mailer:${PASSWORD}@mail.example.com:70000` });
    expect(await main.exited).toBe(1);
    const { stdout, stderr } = main.output();
    expect(stderr).toBe(`AUTHMD_SMTP_URL has a port outside 1 to 65535: give one in that range or leave it out (587 for smtp://). ${EXAMPLE}\n`);
    expect(stdout).toBe('');
  });
});
