import { mkdtempSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteStore } from '@authmd/service';
import { FIRST_RUN, servicePerTest, type RunningService } from '../support/harness.ts';
import { Browser, latestCode, mailbox, parseForms, type Fetcher, type Page } from './browser.ts';
import { HOUR } from './flows.ts';

/**
 * Sign-in code limits (issue 10): the requesting IP is counted first, and an address is charged only
 * for codes that are sent, so one source cannot lock a person out of signing in, nor fill the store
 * with counters. Over real HTTP; other clients are bound to other loopback addresses (127.0.0.0/8).
 */

const start = servicePerTest();

/** The defaults: 20 codes per IP, 3 per (address, IP), 10 per address, per hour. */
const DEFAULTS = { limits: {} };

const agents: Agent[] = [];
afterEach(() => {
  for (const agent of agents.splice(0)) agent.destroy();
});

/**
 * A `fetch` over node:http whose connections leave from `localAddress`, so the service's socket sees
 * that client IP. Only what `Browser` needs: string bodies, manual redirects, every response header.
 */
function fetchFrom(localAddress: string): Fetcher {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  agents.push(agent);
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const body = init.body === undefined || init.body === null ? undefined : String(init.body);
      const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
      if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
      const req = httpRequest(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method: init.method ?? 'GET', headers, localAddress, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const responseHeaders = new Headers();
            for (let i = 0; i < res.rawHeaders.length; i += 2) responseHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            const status = res.statusCode ?? 0;
            resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
}

/** A browser at the client IP `ip`: over HTTP from that loopback address, or straight into the Web handler for other addresses (IPv6). */
function browserAt(running: RunningService, ip: string): Browser {
  if (ip.startsWith('127.')) return new Browser(running.base, {}, fetchFrom(ip));
  return new Browser(running.base, {}, (url, init) => running.service.handler(new Request(url, init), { clientIp: ip }));
}

/** Opens the sign-in form (for its CSRF pair) and asks for a code for `email`. */
async function askForCode(browser: Browser, email: string): Promise<Page> {
  const form = await browser.get('/login');
  expect(form.status).toBe(200);
  return browser.submit(form, '/login', { email });
}

/** Asks for codes for every address in `emails` from one browser, `concurrency` at a time; the statuses in order. */
async function flood(browser: Browser, emails: string[], concurrency = 1): Promise<Page[]> {
  const form = await browser.get('/login');
  expect(form.status).toBe(200);
  const pages: Page[] = new Array(emails.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < emails.length) {
        const i = next++;
        pages[i] = await browser.submit(form, '/login', { email: emails[i]! });
      }
    }),
  );
  return pages;
}

function isCodeForm(page: Page): boolean {
  return page.status === 200 && parseForms(page.html).some((f) => f.action === '/login/code');
}

async function messagesTo(base: string, email: string): Promise<number> {
  return (await mailbox(base)).filter((m) => m.to === email).length;
}

const victim = 'victim@example.com';

describe('one source cannot lock a person out of signing in', () => {
  it('a flood from one IP for the victim address: the attacker gets 3 codes, then 429s; the victim, from another IP, still gets a code and signs in', async () => {
    const running = await start(DEFAULTS);
    const attacker = browserAt(running, '127.0.0.2');
    const pages = await flood(attacker, Array.from({ length: 60 }, () => victim));
    expect(pages.slice(0, 3).map(isCodeForm)).toEqual([true, true, true]);
    for (const [i, page] of pages.slice(3).entries()) expect(page.status, `request ${i + 4}`).toBe(429);
    expect(pages[3]!.html).toContain('sent to this address from your network');
    expect(pages[59]!.html).toContain('were asked for from your network');
    expect(await messagesTo(running.base, victim)).toBe(3);

    const person = browserAt(running, '127.0.0.1');
    const codeForm = await askForCode(person, victim);
    expect(codeForm.status).toBe(200);
    expect(isCodeForm(codeForm)).toBe(true);
    expect(await messagesTo(running.base, victim)).toBe(4);
    const signedIn = await person.submit(codeForm, '/login/code', { code: await latestCode(running.base, victim) });
    expect(signedIn.status).toBe(303);
  });

  it('an IP that already spent its 20 codes on other addresses cannot charge the victim address at all', async () => {
    const running = await start(DEFAULTS);
    const attacker = browserAt(running, '127.0.0.2');
    const spent = await flood(attacker, Array.from({ length: 20 }, (_, i) => `other${i}@example.com`));
    expect(spent.every(isCodeForm)).toBe(true);
    const refused = await flood(attacker, Array.from({ length: 100 }, () => victim), 8);
    expect(refused.every((page) => page.status === 429 && page.html.includes('were asked for from your network'))).toBe(true);
    expect(await messagesTo(running.base, victim)).toBe(0);

    // the victim's whole budget is intact: 3 from their own IP, and more from other networks up to 10
    const person = browserAt(running, '127.0.0.1');
    for (let i = 0; i < 3; i++) expect(isCodeForm(await askForCode(person, victim)), `victim's code ${i + 1}`).toBe(true);
    expect(await messagesTo(running.base, victim)).toBe(3);
  });

  it('a mail failure is charged to the asking source (the message may have gone out), but the victim elsewhere still gets a code', async () => {
    let down = true;
    const delivered: string[] = [];
    const running = await start({
      ...DEFAULTS,
      mail: {
        // the host's own sender, whose upstream is down at first
        mailer: {
          async send(message) {
            if (down) throw new Error('upstream mail relay unreachable');
            delivered.push(message.to);
          },
        },
      },
    });
    const asker = browserAt(running, '127.0.0.2');
    const pages = await flood(asker, [victim, victim, victim, victim]);
    expect(pages.map((p) => p.status)).toEqual([500, 500, 500, 429]);
    down = false;
    expect((await askForCode(asker, victim)).status).toBe(429);
    expect(isCodeForm(await askForCode(browserAt(running, '127.0.0.1'), victim))).toBe(true);
    expect(delivered).toEqual([victim]);
  });
});

// The SQLite file is read back, so this runs on SQLite in the first run only (FIRST_RUN).
if (FIRST_RUN) {
  describe('counter rows one IP can create are bounded', () => {
    it('a flood over 10,000 distinct addresses from one IP writes at most 2 × the per-IP limit + 1 counter rows', { timeout: 180_000 }, async () => {
      const path = join(mkdtempSync(join(tmpdir(), 'authmd-sign-in-')), 'authmd.db');
      const running = await start({ ...DEFAULTS, store: createSqliteStore({ path }) });
      const attacker = browserAt(running, '127.0.0.2');
      const emails = Array.from({ length: 10_000 }, (_, i) => `person${i}@example.com`);
      const pages = await flood(attacker, emails, 16);
      expect(pages.filter(isCodeForm)).toHaveLength(20);
      expect(pages.filter((p) => p.status === 429)).toHaveLength(10_000 - 20);

      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        const keys = (db.prepare('SELECT key FROM authmd_counters').all() as { key: string }[]).map((row) => row.key);
        // per code sent: the address's counter and the (address, IP) counter; plus the IP's own one
        expect(keys.length).toBeLessThanOrEqual(2 * 20 + 1);
        expect(keys.filter((key) => key.includes('127.0.0.2')).length).toBeLessThanOrEqual(20 + 1);
      } finally {
        db.close();
      }
    });
  });
}

describe('the limits still hold for honest use', () => {
  it('one person at one IP: 3 codes per address per hour, then a 429 page that says when to try again', async () => {
    const running = await start(DEFAULTS);
    const person = browserAt(running, '127.0.0.1');
    for (let i = 0; i < 3; i++) expect(isCodeForm(await askForCode(person, 'ada@example.com')), `code ${i + 1}`).toBe(true);
    const fourth = await askForCode(person, 'ada@example.com');
    expect(fourth.status).toBe(429);
    expect(fourth.response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(fourth.html).toMatch(/try again in 60 minutes/);
    // and, for whoever runs the service, the limit and the option that sets it (docs/configuration.md)
    expect(fourth.html).toContain('At most 3 an hour to one address from one network; the service&#39;s operator sets this limit with the limits.signInCodesPerAddressAndIpPerHour option.');
    expect(fourth.response.headers.get('retry-after')).toBe('3600');
    expect(parseForms(fourth.html).map((f) => f.action)).toContain('/login');
    expect(await messagesTo(running.base, 'ada@example.com')).toBe(3);
    running.clock.advance(HOUR);
    expect(isCodeForm(await askForCode(person, 'ada@example.com'))).toBe(true);
  });

  it('one address: at most 10 codes per hour whatever the sources', async () => {
    const running = await start(DEFAULTS);
    const statuses: number[] = [];
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      const browser = browserAt(running, ip);
      for (let i = 0; i < 3; i++) statuses.push((await askForCode(browser, 'ada@example.com')).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    const fresh = await askForCode(browserAt(running, '127.0.0.6'), 'ada@example.com');
    expect(fresh.status).toBe(429);
    expect(fresh.html).toContain('Too many codes were sent to this address;');
    expect(await messagesTo(running.base, 'ada@example.com')).toBe(10);
    running.clock.advance(HOUR);
    expect(isCodeForm(await askForCode(browserAt(running, '127.0.0.6'), 'ada@example.com'))).toBe(true);
  });

  it('one IP: at most 20 codes per hour whatever the addresses, and a refused request charges no address', async () => {
    const running = await start(DEFAULTS);
    const client = browserAt(running, '127.0.0.2');
    const pages = await flood(client, Array.from({ length: 21 }, (_, i) => `person${i}@example.com`));
    expect(pages.slice(0, 20).every(isCodeForm)).toBe(true);
    expect(pages[20]!.status).toBe(429);
    expect(pages[20]!.html).toContain('were asked for from your network');
    const more = await flood(client, Array.from({ length: 15 }, () => 'person20@example.com'));
    expect(more.every((page) => page.status === 429)).toBe(true);
    expect(await messagesTo(running.base, 'person20@example.com')).toBe(0);
    // none of those refusals was charged to person20: another client gets a code for it at once
    expect(isCodeForm(await askForCode(browserAt(running, '127.0.0.3'), 'person20@example.com'))).toBe(true);
    running.clock.advance(HOUR);
    expect(isCodeForm(await askForCode(client, 'person21@example.com'))).toBe(true);
  });

  it('the limits are configurable; signInCodesPerHour still names the per-address limit', async () => {
    const running = await start({ limits: { signInCodesPerHour: 4, signInCodesPerAddressAndIpPerHour: 2, signInCodesPerIpPerHour: 50 } });
    const statuses: number[] = [];
    for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
      const browser = browserAt(running, ip);
      for (let i = 0; i < 2; i++) statuses.push((await askForCode(browser, 'ada@example.com')).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    const third = await askForCode(browserAt(running, '127.0.0.2'), 'ada@example.com');
    expect(third.html).toContain('sent to this address from your network');
  });
});

describe('IPv6 clients count by their /64', () => {
  const inNetwork = (i: number) => `2001:db8:1:2:${(i + 1).toString(16)}::${(i * 7 + 1).toString(16)}`;

  it('addresses rotated within one /64 share the per-IP limit; another /64 does not', async () => {
    const running = await start(DEFAULTS);
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await askForCode(browserAt(running, inNetwork(i)), `person${i}@example.com`)).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.slice(20)).toEqual([429, 429, 429, 429, 429]);
    expect(isCodeForm(await askForCode(browserAt(running, '2001:db8:1:3::1'), 'person20@example.com'))).toBe(true);
  });

  it('rotating addresses within one /64 cannot lock out the victim, who signs in from another network', async () => {
    const running = await start(DEFAULTS);
    for (let i = 0; i < 40; i++) await askForCode(browserAt(running, inNetwork(i)), victim);
    expect(await messagesTo(running.base, victim)).toBe(3);
    const person = browserAt(running, '2001:db8:ffff::1');
    const codeForm = await askForCode(person, victim);
    expect(isCodeForm(codeForm)).toBe(true);
    expect((await person.submit(codeForm, '/login/code', { code: await latestCode(running.base, victim) })).status).toBe(303);
  });

  it('an IPv4-mapped IPv6 peer counts as its IPv4 address', async () => {
    const running = await start({ limits: { signInCodesPerIpPerHour: 2 } });
    expect((await askForCode(browserAt(running, '192.0.2.7'), 'a@example.com')).status).toBe(200);
    expect((await askForCode(browserAt(running, '::ffff:192.0.2.7'), 'b@example.com')).status).toBe(200);
    const third = await askForCode(browserAt(running, '::FFFF:c000:207'), 'c@example.com');
    expect(third.status).toBe(429);
    expect(third.html).toContain('were asked for from your network');
  });
});
