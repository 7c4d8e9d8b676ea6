import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { jsonLogger, type Logger } from '@authmd/service';
import { accessTokenFor, postJson, servicePerTest } from '../support/harness.ts';

/** Logs (issue 14): one request line per request with an id the answer carries, pino's format, pino itself, and no secrets. */

const start = servicePerTest();

interface Line {
  level: 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: Line['level']) => (message: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message, fields });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

const requestLines = (lines: Line[]) => lines.filter((line) => line.message === 'request').map((line) => line.fields);

describe('the request log', () => {
  it('one line per request: its id (also in X-Request-Id), method, path, status, duration and client address', async () => {
    const { logger, lines } = capturingLogger();
    const { base } = await start({ logger });
    const discovery = await fetch(`${base}/.well-known/oauth-authorization-server`);
    const refused = await postJson(`${base}/agent/identity`, { type: 'nonsense' });
    expect(refused.status).toBe(400);

    const logged = requestLines(lines);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toEqual({
      request_id: discovery.headers.get('x-request-id'),
      method: 'GET',
      path: '/.well-known/oauth-authorization-server',
      status: 200,
      duration_ms: expect.any(Number),
      client_ip: '127.0.0.1',
    });
    expect(logged[1]).toMatchObject({ request_id: refused.headers.get('x-request-id'), method: 'POST', path: '/agent/identity', status: 400 });
    expect(discovery.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(refused.headers.get('x-request-id')).not.toBe(discovery.headers.get('x-request-id'));
  });

  it("a caller's X-Request-Id is kept when it is a plain token, replaced when it could forge a log line", async () => {
    const { logger, lines } = capturingLogger();
    const { base } = await start({ logger });
    const kept = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'lb-7f3a:42.1_x' } });
    expect(kept.headers.get('x-request-id')).toBe('lb-7f3a:42.1_x');
    for (const hostile of ['a"b', 'a b', `${'x'.repeat(129)}`, '{"level":50}']) {
      const replaced = await fetch(`${base}/healthz`, { headers: { 'x-request-id': hostile } });
      expect(replaced.headers.get('x-request-id'), hostile).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(requestLines(lines).map((line) => line.request_id)[0]).toBe('lb-7f3a:42.1_x');
  });

  it('the refusal line of a request names its id', async () => {
    const { logger, lines } = capturingLogger();
    // An introspection call without credentials is refused with a detail for the log.
    const { base } = await start({ logger, introspection: { clients: [{ id: 'notes-rs', secret: 's'.repeat(32) }] } });
    const answer = await fetch(`${base}/oauth2/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=at_x' });
    expect(answer.status).toBe(401);
    const id = answer.headers.get('x-request-id');
    const about = lines.filter((line) => line.fields.request_id === id).map((line) => line.message);
    expect(about).toContain('request');
    const refused = lines.filter((l) => l.message === 'request refused');
    expect(refused.length, 'the refusal is logged with its detail').toBeGreaterThan(0);
    for (const line of refused) expect(line.fields.request_id).toBe(id);
  });

  it('never holds a secret: a whole flow (claim token in a query, assertion, access token) leaves none in any line', async () => {
    const { logger, lines } = capturingLogger();
    const { base } = await start({ logger });
    const registration = await (await postJson(`${base}/agent/identity`, { type: 'anonymous' })).json();
    const assertion: string = registration.identity.assertion;
    const claimToken: string = registration.claim_token;
    expect(assertion && claimToken).toBeTruthy();
    const token = await accessTokenFor(base, assertion);
    expect((await fetch(`${base}/api/notes`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await fetch(`${base}/claim?token=${encodeURIComponent(claimToken)}`);
    await fetch(`${base}/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }) });

    const text = JSON.stringify(lines);
    expect(requestLines(lines).map((line) => line.path)).toEqual(expect.arrayContaining(['/agent/identity', '/oauth2/token', '/claim', '/oauth2/revoke']));
    for (const secret of [assertion, claimToken, token, assertion.split('.')[2]!]) expect(text).not.toContain(secret);
  });

  it('requestLog: false turns it off, and nothing else', async () => {
    const { logger, lines } = capturingLogger();
    const { base } = await start({ logger, requestLog: false });
    const answer = await fetch(`${base}/healthz`);
    expect(answer.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestLines(lines)).toEqual([]);
  });
});

describe('the format', () => {
  it("jsonLogger writes pino's lines: numeric level, epoch-ms time, msg, then the fields", () => {
    const written: string[] = [];
    const logger = jsonLogger((line) => void written.push(line));
    const before = Date.now();
    logger.info('request', { status: 200 });
    logger.warn('careful');
    logger.error('broken', { error: 'x' });
    expect(written.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
    const records = written.map((line) => JSON.parse(line));
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      [30, 'request'],
      [40, 'careful'],
      [50, 'broken'],
    ]);
    expect(records[0]).toMatchObject({ status: 200 });
    expect(records[0].time).toBeGreaterThanOrEqual(before);
  });

  it('pino itself is accepted as the logger, and called its way: fields first, then the message', async () => {
    const written: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        written.push(String(chunk));
        done();
      },
    });
    const { base } = await start({ logger: pino({ base: { app: 'notes' } }, destination) });
    const answer = await fetch(`${base}/healthz`);
    const records = written.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((line) => JSON.parse(line));
    const request = records.find((record) => record.msg === 'request');
    expect(request).toMatchObject({ level: 30, app: 'notes', request_id: answer.headers.get('x-request-id'), method: 'GET', path: '/healthz', status: 200 });
  });
});
