import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { afterTest } from '../../../../test-support/after-test.ts';
import { recordingLogger } from '../../../../test-support/recording-logger.ts';
import { startDemo } from '../../../../examples/demo/src/start.ts';
import type { Demo } from './support.ts';

/**
 * A TCP proxy on 127.0.0.1 in front of the real demo, for answers lost on the way back: it reads each
 * HTTP/1.1 request off the client's connection (to know which one it is), passes the bytes on to the
 * service unchanged, and for a request a rule picks either destroys the client's connection as soon
 * as the service starts answering (the service processed it; the client never learns the outcome) or
 * destroys it without passing the request on (the service never saw it). The demo names the proxy as
 * its issuer, so every URL it advertises (and the person's pages) leads through the proxy.
 */

export interface ProxiedRequest {
  method: string;
  /** Path without the query. */
  path: string;
  headers: Record<string, string>;
  /** The form or JSON body, parsed. */
  body: Record<string, any>;
}

export interface DropRule {
  match(request: ProxiedRequest): boolean;
  /** Which matching request to drop: 1 for the first (default). Later matches pass. */
  nth?: number;
  /** `answer`: the service processes the request, its answer is lost. `request`: the service never sees it. */
  lose: 'answer' | 'request';
}

export interface DroppingProxy {
  /** Every request that reached the proxy, in order. */
  seen: ProxiedRequest[];
  /** The requests passed on to the service. */
  forwarded: ProxiedRequest[];
  /** The requests whose answer (or which themselves) the proxy dropped. */
  dropped: ProxiedRequest[];
  /** Arms a rule (rules are checked in the order given; each drops one request). */
  drop(rule: DropRule): void;
}

export type ProxiedDemo = Demo & { proxy: DroppingProxy };

/** The demo (service, notes API and demo provider) behind a dropping proxy; both closed after the test. */
export async function startProxiedDemo(): Promise<ProxiedDemo> {
  const seen: ProxiedRequest[] = [];
  const forwarded: ProxiedRequest[] = [];
  const dropped: ProxiedRequest[] = [];
  const rules: { rule: DropRule; matched: number; done: boolean }[] = [];
  const sockets = new Set<Socket>();
  let targetPort = 0;

  /** The rule that drops this request, if any (counting matches). */
  const ruleFor = (request: ProxiedRequest): DropRule | undefined => {
    for (const armed of rules) {
      if (armed.done || !armed.rule.match(request)) continue;
      armed.matched++;
      if (armed.matched === (armed.rule.nth ?? 1)) {
        armed.done = true;
        return armed.rule;
      }
    }
    return undefined;
  };

  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined); // a destroyed peer: the other side is closed below
    }
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);

    let pending = Buffer.alloc(0);
    let loseNextAnswer = false;
    upstream.on('data', (chunk: Buffer) => {
      // The service has processed the request and is answering: the client never gets the answer.
      if (loseNextAnswer) return closeBoth();
      client.write(chunk);
    });
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = parseRequest(pending);
        if (!parsed) return;
        pending = pending.subarray(parsed.length);
        seen.push(parsed.request);
        const rule = ruleFor(parsed.request);
        if (rule?.lose === 'request') {
          dropped.push(parsed.request);
          return closeBoth();
        }
        forwarded.push(parsed.request);
        if (rule) {
          dropped.push(parsed.request);
          loseNextAnswer = true;
        }
        upstream.write(parsed.raw);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  afterTest(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );

  const dataDir = mkdtempSync(join(tmpdir(), 'authmd-client-proxied-'));
  afterTest(() => rmSync(dataDir, { recursive: true, force: true }));
  const logger = recordingLogger();
  const demo = await startDemo({ port: 0, providerPort: 0, dataDir, logger, host: '127.0.0.1', publicUrl: base, pollIntervalSeconds: 1 });
  afterTest(() => demo.close());
  targetPort = demo.port;
  expect(demo.url).toBe(base);
  const proxy: DroppingProxy = { seen, forwarded, dropped, drop: (rule) => void rules.push({ rule, matched: 0, done: false }) };
  return Object.assign(demo, { logger, providerUrl: demo.provider!.url, api: `${base}/api/notes`, proxy });
}

/** One whole HTTP/1.1 request at the start of `buffer` (Content-Length bodies only), or undefined if more is to come. */
function parseRequest(buffer: Buffer): { request: ProxiedRequest; raw: Buffer; length: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [requestLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const [method, target] = requestLine!.split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (headers['transfer-encoding']) throw new Error(`the dropping proxy reads Content-Length bodies only, not ${headers['transfer-encoding']}`);
  const length = end + 4 + Number(headers['content-length'] ?? 0);
  if (buffer.length < length) return undefined;
  const text = buffer.subarray(end + 4, length).toString('utf8');
  let body: Record<string, any> = {};
  if (text) body = (headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : Object.fromEntries(new URLSearchParams(text));
  const request = { method: method!, path: new URL(target!, 'http://proxy').pathname, headers, body };
  return { request, raw: Buffer.from(buffer.subarray(0, length)), length };
}
