import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createProvider, toNodeListener, type AgentProvider, type Fetcher, type OutboxOptions } from '@authmd/provider';
import { silentLogger, type Logger } from '@authmd/service';
import type { KeyEncryptionOptions } from '@authmd/service/keys';
import { createSqliteStore, type Store } from '@authmd/service/store';
import { sampleApi } from './api.ts';
import { jsonError } from './http.ts';
import { isOwnHost, ownHosts, refuseMisdirected } from '../host-check.ts';
import { listen, stopServer } from '../server-lifecycle.ts';
import { demoKeyEncryption } from '../key-encryption.ts';
import { demoPage } from './page.ts';
import { Sessions, sessions as sessionsTable } from './sessions.ts';

export const DEMO_PROVIDER_NAME = 'authmd demo provider';

export interface DemoProviderOptions {
  /** 0 picks a free port. The provider binds 127.0.0.1 only. */
  port: number;
  /** Where `provider.db` (SQLite) lives; created if missing. */
  dataDir: string;
  /** The demo service's base URL: what the page's one-button consent is for. */
  serviceUrl: string;
  /** Default: silent. */
  logger?: Logger;
  /** For tests: epoch milliseconds. Default Date.now. */
  clock?: () => number;
  /** For tests: outbound HTTP. Default the SSRF-safe fetcher (loopback allowed). */
  fetcher?: Fetcher;
  /** For tests: delivery timing. Default: every second, 2 s backoff doubling to 10 min. */
  outbox?: OutboxOptions;
  /** Deliver revocation SETs in the background. Default true; tests call `provider.deliverDue()`. */
  deliverInBackground?: boolean;
  /** The key that encrypts the stored signing key. Default: the demo's (key-encryption.ts: AUTHMD_KEY_ENCRYPTION_KEY, else `<dataDir>/key-encryption-key`). */
  keyEncryption?: KeyEncryptionOptions;
  /** Prometheus metrics in `provider.metrics` (AUTHMD_METRICS_PORT). Default off. */
  metrics?: boolean;
}

/** What the demo service's trust list needs to accept this provider (the shape of `trust.issuers[]`). */
export interface DemoProviderTrustEntry {
  issuer: string;
  displayName: string;
  /** The CIMD URL minted as `client_id` (http on loopback, so it must be listed explicitly). */
  clientIds: string[];
  jwksUri: string;
}

export interface RunningDemoProvider {
  /** The base URL, which is also the provider's issuer: `http://127.0.0.1:<port>`. */
  url: string;
  port: number;
  dbPath: string;
  server: Server;
  provider: AgentProvider;
  trustEntry: DemoProviderTrustEntry;
  /** Stops accepting connections, ends open ones, stops delivery, closes the store. */
  close(): Promise<void>;
}

/**
 * Starts the demo agent provider next to the demo service: its documents (JWKS, RFC 8414 metadata,
 * CIMD), the published sample provider's JSON API, and a page where a demo user signs in, grants and
 * revokes consent. SQLite at `<dataDir>/provider.db`; revocation SETs go out from a durable outbox.
 * The port is bound first so that the issuer names the real port.
 */
export async function startDemoProvider(options: DemoProviderOptions): Promise<RunningDemoProvider> {
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? Date.now;
  let handle: ((request: Request) => Promise<Response>) | undefined;
  let listener: ReturnType<typeof toNodeListener> | undefined;
  // Set once the port is known, before the first request can be read.
  let hosts: Set<string> | undefined;
  const server = createServer((req, res) => {
    if (hosts && !isOwnHost(req, hosts)) return refuseMisdirected(res, hosts);
    if (listener) return listener(req, res);
    res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' });
    res.end('{"error":"starting","message":"The demo provider is still starting."}');
  });
  await listen(server, options.port, '127.0.0.1');
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  hosts = ownHosts([url], { host: '127.0.0.1', port });
  const dbPath = join(options.dataDir, 'provider.db');

  let provider: AgentProvider;
  let store: Store | undefined;
  try {
    store = createSqliteStore({ path: dbPath });
    await store.migrate([sessionsTable]);
    provider = await createProvider({
      issuer: url,
      store,
      clock,
      allowLoopback: true,
      clientName: DEMO_PROVIDER_NAME,
      logger,
      keyEncryption: options.keyEncryption ?? { keys: demoKeyEncryption(options.dataDir, process.env.AUTHMD_KEY_ENCRYPTION_KEY).keys },
      ...(options.fetcher ? { fetcher: options.fetcher } : {}),
      ...(options.outbox ? { outbox: options.outbox } : {}),
      ...(options.metrics ? { metrics: true } : {}),
    });
    const sessions = new Sessions(store, clock);
    const api = sampleApi(provider, sessions);
    const page = demoPage({ provider, sessions, serviceUrl: options.serviceUrl, origin: url });
    handle = async (request) => {
      const path = new URL(request.url).pathname;
      try {
        if (provider.handles(path)) return await provider.handler(request);
        return (await page(request, path)) ?? (await api(request, path)) ?? jsonError(404, 'not_found', `Nothing is served at ${path}.`);
      } catch (error) {
        logger.error('demo provider request failed', { error: error instanceof Error ? error.stack : String(error) });
        return jsonError(500, 'internal_error', 'An unexpected error occurred.');
      }
    };
    listener = toNodeListener((request) => handle!(request), { origin: url });
    // start() also runs the hourly upkeep, whose purge removes expired sessions from this store too.
    if (options.deliverInBackground !== false) provider.start();
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store?.close().catch(() => {});
    throw error;
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await stopServer(server);
      await provider.close();
    })();
    return closing;
  };

  return {
    url,
    port,
    dbPath,
    server,
    provider,
    trustEntry: { issuer: url, displayName: DEMO_PROVIDER_NAME, clientIds: [provider.clientId], jwksUri: provider.jwksUri },
    close,
  };
}
