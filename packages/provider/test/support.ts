import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryStore, type Store } from '@authmd/core/store';
import { createSqliteStore } from '@authmd/core/sqlite';
import { createProvider, toNodeListener, type AgentProvider, type ProviderOptions } from '../src/index.ts';

/** Test helpers: real HTTP servers on 127.0.0.1, a settable clock, temporary directories. */

export interface TestServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

export async function listen(listener: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<TestServer> {
  const server = createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export interface ReceivedSet {
  token: string;
  contentType: string | undefined;
  accept: string | undefined;
  at: number;
}

export interface FakeService extends TestServer {
  /** The issuer (the server's base URL, unless overridden). */
  issuer: string;
  eventsEndpoint: string;
  received: ReceivedSet[];
  /** Metadata requests seen, by path. */
  requests: string[];
  /** Answers to the next SET deliveries, in order; the last one repeats. Default 202. */
  answerWith(answers: Array<{ status: number; body?: unknown }>): void;
}

export interface FakeServiceOptions {
  /** Issuer the AS metadata claims; default the server's own URL. */
  claimedIssuer?: (url: string) => string;
  /** Serve RFC 9728 metadata for `<url>/api` naming the server as its authorization server. */
  protectedResource?: boolean;
  /** Advertise an events endpoint. Default true. */
  events?: boolean;
  port?: number;
  clock?: () => number;
}

/** A minimal auth.md service: discovery documents and an RFC 8935 receiver that records what it gets. */
export async function startFakeService(options: FakeServiceOptions = {}): Promise<FakeService> {
  const state = { received: [] as ReceivedSet[], requests: [] as string[], answers: [] as Array<{ status: number; body?: unknown }>, answered: 0 };
  let base = '';
  const server = await listen(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET') state.requests.push(path);
    if (req.method === 'GET' && path === '/.well-known/oauth-authorization-server') {
      return sendJson(res, 200, {
        issuer: options.claimedIssuer ? options.claimedIssuer(base) : base,
        token_endpoint: `${base}/oauth2/token`,
        agent_auth: {
          identity_endpoint: `${base}/agent/identity`,
          ...(options.events === false ? {} : { events_endpoint: `${base}/agent/event/notify` }),
        },
      });
    }
    if (req.method === 'GET' && options.protectedResource && path === '/.well-known/oauth-protected-resource/api') {
      return sendJson(res, 200, { resource: `${base}/api`, authorization_servers: [base] });
    }
    if (req.method === 'POST' && path === '/agent/event/notify') {
      const token = (await readBody(req)).trim();
      state.received.push({ token, contentType: req.headers['content-type'], accept: req.headers.accept, at: options.clock?.() ?? Date.now() });
      const answer = state.answers[Math.min(state.answered++, state.answers.length - 1)] ?? { status: 202 };
      if (answer.body === undefined) {
        res.writeHead(answer.status, { 'Content-Length': 0 });
        return res.end();
      }
      return sendJson(res, answer.status, answer.body);
    }
    sendJson(res, 404, { error: 'not_found' });
  }, options.port);
  base = server.url;
  return {
    ...server,
    issuer: options.claimedIssuer ? options.claimedIssuer(base) : base,
    eventsEndpoint: `${base}/agent/event/notify`,
    received: state.received,
    requests: state.requests,
    answerWith(answers) {
      state.answers = answers;
      state.answered = 0;
    },
  };
}

export class TestClock {
  constructor(public ms = Date.UTC(2026, 4, 21, 12, 0, 0)) {}
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
  get seconds(): number {
    return Math.floor(this.ms / 1000);
  }
}

const dirs: string[] = [];
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'authmd-provider-'));
  dirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface RunningProvider {
  provider: AgentProvider;
  /** The provider's documents served over HTTP at its issuer. */
  server: TestServer;
  close(): Promise<void>;
}

/**
 * A provider whose issuer is a real 127.0.0.1 server serving its documents. The port is bound
 * first so the issuer names it; `port` reuses a port (restarts).
 */
export async function startProvider(
  options: Partial<ProviderOptions> & { store?: Store; port?: number } = {},
): Promise<RunningProvider> {
  let handler: ((request: Request) => Promise<Response>) | undefined;
  let issuer = '';
  const server = await listen((req, res) => toNodeListener((r) => handler!(r), { origin: issuer })(req, res), options.port);
  issuer = server.url;
  const { port: _port, ...rest } = options;
  const provider = await createProvider({ store: options.store ?? createMemoryStore(), allowLoopback: true, ...rest, issuer });
  handler = (request) => provider.handler(request);
  return {
    provider,
    server,
    close: async () => {
      await server.close();
      await provider.close();
    },
  };
}

export function sqliteStore(path: string): Store {
  return createSqliteStore({ path, checkpointIntervalMs: 0 });
}

export const ada = (authTime: number) => ({ id: 'user_ada', email: 'ada@example.com', emailVerified: true, authTime });
