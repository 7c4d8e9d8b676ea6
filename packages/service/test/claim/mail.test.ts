import { describe, expect, it } from 'vitest';
import { ConfigError, createMemoryStore, createService, silentLogger } from '@authmd/service';
import { servicePerTest, type HarnessOptions } from '../support/harness.ts';
import { Browser, mailbox } from './browser.ts';
import { authorize, completeClaim, jwtPayload, registerServiceAuth } from './flows.ts';

/** Mail for the sign-in: the development outbox, or the host's own Mailer (issue 3, item 3). */

const start = servicePerTest();

type Mailer = NonNullable<Extract<NonNullable<HarnessOptions['mail']>, { mailer: unknown }>['mailer']>;
type Message = Parameters<Mailer['send']>[0];

/** A real Mailer: it keeps what it is given, as an in-memory inbox. */
class RecordingMailer implements Mailer {
  readonly sent: Message[] = [];
  async send(message: Message): Promise<void> {
    this.sent.push(message);
  }
  codeFor(email: string): string {
    const message = [...this.sent].reverse().find((m) => m.to === email);
    const code = message && /\b(\d{6})\b/.exec(message.subject)?.[1];
    if (!code) throw new Error(`no code for ${email}`);
    return code;
  }
}

describe('the development outbox', () => {
  it('shows sent codes as JSON and as an HTML page', async () => {
    const { base } = await start({ name: 'Acme Notes' });
    expect(await mailbox(base)).toEqual([]);
    const browser = new Browser(base);
    await browser.signIn('ada@example.com');

    const response = await fetch(`${base}/dev/mailbox.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const { messages } = await response.json();
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ to: 'ada@example.com' });
    expect(messages[0].subject).toMatch(/Acme Notes/);
    expect(messages[0].subject).toMatch(/\b\d{6}\b/);
    expect(typeof messages[0].text).toBe('string');

    const page = await fetch(`${base}/dev/mailbox`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('ada@example.com');
    expect(html).toContain(messages[0].subject);
  });

  it('is announced at start', async () => {
    const warnings: string[] = [];
    await start({ logger: { info() {}, warn: (message) => void warnings.push(message), error() {} } });
    expect(warnings.some((w) => w.includes('/dev/mailbox'))).toBe(true);
  });

  it('is never the default in production: without mail configuration the service refuses to start', async () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await expect(
        createService({
          issuer: 'https://auth.example',
          scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
          store: createMemoryStore(),
          logger: silentLogger,
          maintenanceIntervalSeconds: 0,
          // Production also refuses plaintext signing keys (keys-at-rest.test.ts): allowed here, so the mail check is what refuses.
          keyEncryption: { allowPlaintext: true },
        }),
      ).rejects.toThrow(ConfigError);
    } finally {
      process.env.NODE_ENV = saved;
    }
  });

  it('lists messages newest first', async () => {
    const { base } = await start();
    await new Browser(base).signIn('ada@example.com');
    await new Browser(base).signIn('bob@example.com');
    expect((await mailbox(base)).map((m) => m.to)).toEqual(['bob@example.com', 'ada@example.com']);
  });
});

describe('a Mailer of the host', () => {
  it('receives the sign-in codes, and there is no dev mailbox (404, JSON and HTML)', async () => {
    const mailer = new RecordingMailer();
    const { base } = await start({ mail: { mailer } });
    for (const path of ['/dev/mailbox', '/dev/mailbox.json']) expect((await fetch(base + path)).status, path).toBe(404);

    const registration = await registerServiceAuth(base, 'ada@example.com');
    const browser = new Browser(base);
    await browser.signIn('Ada@Example.com', { readCode: async () => mailer.codeFor('ada@example.com') });
    expect(mailer.sent).toHaveLength(1);
    const message = mailer.sent[0]!;
    expect(message.to).toBe('ada@example.com');
    expect(message.text).toContain(mailer.codeFor('ada@example.com'));
    expect(message.html).toContain(mailer.codeFor('ada@example.com'));

    const code = await authorize(browser, registration.claim.attempt.verification_uri);
    const done = await completeClaim(base, registration.claim.token, code);
    expect(done.status).toBe(200);
    expect(jwtPayload((await done.json()).identity.assertion).email).toBe('ada@example.com');
    for (const path of ['/dev/mailbox', '/dev/mailbox.json']) expect((await fetch(base + path)).status, path).toBe(404);
  });

  it('a mailer that fails does not sign anyone in and does not crash the service', async () => {
    const failing: Mailer = { send: async () => Promise.reject(new Error('smtp down')) };
    const { base } = await start({ mail: { mailer: failing } });
    const browser = new Browser(base);
    const form = await browser.get('/login');
    const page = await browser.submit(form, '/login', { email: 'ada@example.com' });
    expect(page.status).toBeGreaterThanOrEqual(500);
    expect(page.html).not.toContain('smtp down');
    expect((await fetch(`${base}/login`)).status).toBe(200);
  });
});
