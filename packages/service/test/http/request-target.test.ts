import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../support/harness.ts';
import { stillServes } from './helpers.ts';

/**
 * Odd request targets, sent byte for byte over a socket (fetch and node:http normalise them away).
 * The node adapter decides from the request target whether a request is the service's.
 */

let running: RunningService;
beforeAll(async () => {
  running = await startService();
});
afterAll(() => running.close());

/** Sends a raw HTTP/1.1 request and returns what came back before the socket closed (or 2 s passed). */
function rawExchange(base: string, head: string): Promise<string> {
  const { port } = new URL(base);
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(`${head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const timer = setTimeout(done, 2000);
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('close', done);
    socket.on('error', done);
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

describe('request targets the URL parser rejects', () => {
  it('answers an absolute-form target that is not a valid URL with a 4xx, and keeps serving', async () => {
    const response = await rawExchange(running.base, 'GET http://[::1 HTTP/1.1');
    const status = statusOf(response);
    expect(status, `raw response: ${JSON.stringify(response)}`).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(await stillServes(running)).toBe(true);
  });
});

describe('request targets that look like another host', () => {
  it('does not serve auth.md for the path //evil.example/auth.md', async () => {
    const response = await rawExchange(running.base, 'GET //evil.example/auth.md HTTP/1.1');
    // The path is "//evil.example/auth.md", which is not one of the service's paths: it must fall
    // through to the host application (the harness answers 404 JSON).
    expect(statusOf(response)).toBe(404);
    expect(response).not.toContain('text/markdown');
  });

  it('does not serve the token endpoint for the path //evil.example/oauth2/token', async () => {
    const response = await rawExchange(running.base, 'GET //evil.example/oauth2/token HTTP/1.1');
    expect(statusOf(response)).toBe(404);
    expect(response).not.toContain('method_not_allowed');
  });

  it('serves its own paths in absolute form (RFC 9112 §3.2.2)', async () => {
    const response = await rawExchange(running.base, `GET ${running.base}/auth.md HTTP/1.1`);
    expect(statusOf(response)).toBe(200);
    expect(response).toContain('text/markdown');
  });
});
