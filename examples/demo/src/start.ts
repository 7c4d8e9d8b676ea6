import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createMemoryStore, createPostgresStore, createService, createSqliteStore, silentLogger, withRedis, type AuthmdService, type Logger, type ServiceOptions, type Store } from '@authmd/service';
import { createApp } from './app.ts';
import { NOTES_PATH } from './notes-api.ts';
import { prepareDataDir } from './data-dir.ts';
import { demoKeyEncryption, type DemoKeyEncryption } from './key-encryption.ts';
import { listen, stopServer } from './server-lifecycle.ts';
import { startMetricsServer } from './metrics-server.ts';
import { DEMO_PROVIDER_NAME, startDemoProvider, type DemoProviderTrustEntry, type RunningDemoProvider } from './provider/index.ts';
import { CIMD_PATH, JWKS_PATH } from '@authmd/provider';
import { sendError } from './respond.ts';
import { isOwnHost, ownHosts, refuseMisdirected } from './host-check.ts';
import { DEFAULT_HOST, issuerFor, redactDatabaseUrl } from './settings.ts';

export const DEMO_NAME = 'authmd demo notes';
export const DEMO_SUMMARY = 'A small notes API that AI agents can register for and use without a browser.';

export interface DemoOptions {
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1. The caller decides whether another address is acceptable (see settings.ts). */
  host?: string;
  /** Where the SQLite file lives; created if missing. */
  dataDir: string;
  /** Default: silent. */
  logger?: Logger;
  /** Registration rate limits per hour; default 300 per address (see DEMO_RATE_LIMITS). */
  rateLimits?: ServiceOptions['rateLimits'];
  /** Also run the demo agent provider on this port (0: any free port), trusted by the demo service. */
  providerPort?: number;
  /**
   * Also trust a demo provider that runs on its own (another process, or `startDemoProvider` with its
   * own lifecycle): its `trustEntry`. With `providerPort` as well, both are trusted.
   */
  trustProvider?: DemoProviderTrustEntry;
  /** Where state lives: `sqlite` (default, `<dataDir>/authmd.db`) or `memory` (gone when the demo stops). */
  store?: 'sqlite' | 'memory';
  /**
   * A PostgreSQL URL (AUTHMD_DATABASE_URL): state lives there instead, and several demo processes on
   * the same database (and the same `publicUrl` and key-encryption key) act as one service.
   */
  databaseUrl?: string;
  /**
   * The demo provider another replica runs (AUTHMD_DEMO_PROVIDER_URL): trusted as if this process ran
   * it, so every replica describes the same service. Use instead of `providerPort`.
   */
  demoProviderUrl?: string;
  /**
   * A Redis URL (AUTHMD_REDIS_URL): the rate-limit counters and the cache invalidation channel live
   * there instead of in the database. Every replica then names the same Redis.
   */
  redisUrl?: string;
  /** What the demo's keys in that Redis start with (default `authmd:`): services that share a Redis keep apart by it. */
  redisPrefix?: string;
  /** The proxies in front whose forwarding header names the client address (AUTHMD_TRUST_PROXY; ServiceOptions.trustProxy). */
  trustProxy?: ServiceOptions['trustProxy'];
  /** The header they append to (AUTHMD_PROXY_HEADER; ServiceOptions.proxyHeader). */
  proxyHeader?: ServiceOptions['proxyHeader'];
  /**
   * The URL agents reach the demo at, when that is not the address it listens on (a proxy in front
   * of it): the issuer and every advertised URL then name it.
   */
  publicUrl?: string;
  /**
   * The value of AUTHMD_KEY_ENCRYPTION_KEY. Without it the demo generates a key-encryption key into
   * `<dataDir>/key-encryption-key` (0600), or reuses the one there: signing keys are never stored in plaintext.
   */
  keyEncryptionKey?: string;
  /**
   * RFC 7662 introspection for resource servers in other processes (AUTHMD_INTROSPECTION_CLIENTS):
   * the callers' ids and secrets. Default: introspection off.
   */
  introspection?: ServiceOptions['introspection'];
  /** The operator's console at /admin and the admin API (AUTHMD_OPERATORS, AUTHMD_ADMIN_TOKEN). Default: off. */
  admin?: ServiceOptions['admin'];
  /**
   * How mail goes out (`createService`'s `mail`, e.g. `{ smtp: { host, port }, from }`). Default: the
   * development outbox, shown at `/dev/mailbox` (which then answers the demo's own addresses only).
   */
  mail?: ServiceOptions['mail'];
  /** How often expired rows are purged (`createService`'s option). Default 60 s. */
  maintenanceIntervalSeconds?: number;
  /** The claim grant's polling interval (`limits.pollIntervalSeconds`). Default 5 s, the protocol's. */
  pollIntervalSeconds?: number;
  /**
   * AUTHMD_METRICS_PORT: turn metrics on (the service's and the demo provider's) and serve them at
   * `http://127.0.0.1:<port>/metrics` (0: any free port), never on the demo's own port. Default: off.
   */
  metricsPort?: number;
}

// Per hour. The profile's 5 per address is meant for a public service; the demo is for trying things
// by hand and for running `authmd check` (some 40 registrations a run) against it more than once.
const DEMO_RATE_LIMITS: ServiceOptions['rateLimits'] = {
  anonymous: { perIp: 300, perService: 3000 },
  service_auth: { perIp: 300, perService: 3000 },
  identity_assertion: { perIp: 300, perService: 3000 },
};

// Every browser of the demo is on 127.0.0.1, so the per-(address, source) sign-in limit, 3 an hour by
// default, would stop a person (or `authmd check`, one sign-in per person a run) after a few tries,
// and the per-source one, 20 an hour, after a few runs of `authmd check` (several sign-ins each, and as
// many v0.1 claim emails on a budget of their own) or an afternoon of trying it by hand. With real mail
// (AUTHMD_SMTP_URL) the per-address limit still keeps any one inbox to 30 an hour.
// docs/configuration.md, "What the demo uses", lists these.
const DEMO_SIGN_IN_LIMITS: ServiceOptions['limits'] = { signInCodesPerHour: 30, signInCodesPerAddressAndIpPerHour: 30, signInCodesPerIpPerHour: 100 };

export interface RunningDemo {
  /** The base URL, which is also the service's issuer. */
  url: string;
  port: number;
  host: string;
  dbPath: string;
  /** Which database holds the state, and where (a PostgreSQL URL without its password). */
  database: { kind: 'sqlite' | 'memory' | 'postgres'; location: string };
  /** The Redis holding counters and invalidation (its URL without the password), when AUTHMD_REDIS_URL is set. */
  redis?: { location: string };
  /** Where the key that encrypts the stored signing keys came from (for the banner). */
  keyEncryption: Omit<DemoKeyEncryption, 'keys'>;
  server: Server;
  service: AuthmdService;
  /** The demo agent provider, when `providerPort` was given. */
  provider?: RunningDemoProvider;
  /** Where the metrics are served (127.0.0.1 only), when `metricsPort` was given. */
  metricsUrl?: string;
  /** Stops accepting connections, ends open ones, then closes the service and its store. */
  close(): Promise<void>;
}

/**
 * Starts the demo: one node:http server carrying the auth.md service (on SQLite at
 * `<dataDir>/authmd.db`) and the notes API. The port is bound first so that the issuer names the
 * real port (PORT=0). Rejects with the listen error (e.g. code EADDRINUSE) when the port is taken.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const host = options.host ?? DEFAULT_HOST;
  const logger = options.logger ?? silentLogger;
  let app: RequestListener | undefined;
  // Set once the port is known, before the first request can be read.
  let hosts: Set<string> | undefined;
  const server = createServer((req, res) => {
    if (hosts && !isOwnHost(req, hosts)) return refuseMisdirected(res, hosts);
    if (app) return app(req, res);
    sendError(res, 503, 'starting', 'The demo is still starting; try again in a moment.', { 'Retry-After': '1' });
  });
  await listen(server, options.port, host);

  const port = (server.address() as AddressInfo).port;
  const url = options.publicUrl ?? issuerFor(host, port);
  // Its public URL, and the address it listens on (what a proxy in front of it forwards to).
  hosts = ownHosts([url, issuerFor(host, port)], { host, port });
  const database: RunningDemo['database'] = options.databaseUrl
    ? { kind: 'postgres', location: redactDatabaseUrl(options.databaseUrl) }
    : options.store === 'memory'
      ? { kind: 'memory', location: ':memory:' }
      : { kind: 'sqlite', location: join(options.dataDir, 'authmd.db') };
  const dbPath = database.location;
  let service: AuthmdService;
  let provider: RunningDemoProvider | undefined;
  let keyEncryption: DemoKeyEncryption;
  let metricsServer: { url: string; server: Server } | undefined;
  const metricsOn = options.metricsPort !== undefined;
  try {
    const keepsFiles = database.kind === 'sqlite' || !options.keyEncryptionKey?.trim() || options.providerPort !== undefined;
    if (keepsFiles) prepareDataDir(options.dataDir);
    keyEncryption = demoKeyEncryption(options.dataDir, options.keyEncryptionKey);
    const keyEncryptionOption = { keys: keyEncryption.keys };
    provider =
      options.providerPort === undefined
        ? undefined
        : await startDemoProvider({ port: options.providerPort, dataDir: options.dataDir, serviceUrl: url, logger, keyEncryption: keyEncryptionOption, metrics: metricsOn });
    const remoteProvider = options.demoProviderUrl === undefined ? undefined : demoProviderTrustEntry(options.demoProviderUrl);
    const trusted = [provider?.trustEntry, remoteProvider, options.trustProvider].filter((entry) => entry !== undefined);
    const databaseStore: Store =
      database.kind === 'postgres'
        ? createPostgresStore({ connectionString: options.databaseUrl! })
        : database.kind === 'memory'
          ? createMemoryStore()
          : createSqliteStore({ path: dbPath });
    service = await createService({
      issuer: url,
      name: DEMO_NAME,
      summary: DEMO_SUMMARY,
      scopes: { preClaim: ['notes.read'], postClaim: ['notes.read', 'notes.write'] },
      // The API itself, not the origin whose home page is public: RFC 9728 clients compare it with the URL they called.
      resources: [{ resource: url + NOTES_PATH, name: 'authmd demo notes API' }],
      store: options.redisUrl ? withRedis(databaseStore, { url: options.redisUrl, ...(options.redisPrefix ? { prefix: options.redisPrefix } : {}) }) : databaseStore,
      logger,
      rateLimits: options.rateLimits ?? DEMO_RATE_LIMITS,
      limits: { ...DEMO_SIGN_IN_LIMITS, ...(options.pollIntervalSeconds !== undefined ? { pollIntervalSeconds: options.pollIntervalSeconds } : {}) },
      // The outbox answers the same Host values as the demo (the issuer's, its own address behind a proxy).
      mail: options.mail ?? { outbox: true, hosts: [...hosts] },
      keyEncryption: keyEncryptionOption,
      // The demo provider runs on 127.0.0.1 over http: trusting it needs the development switch.
      trust: trusted.length ? { issuers: trusted, allowLoopback: true } : undefined,
      ...(options.introspection ? { introspection: options.introspection } : {}),
      ...(options.admin ? { admin: options.admin } : {}),
      ...(options.trustProxy !== undefined ? { trustProxy: options.trustProxy, proxyHeader: options.proxyHeader } : {}),
      ...(options.maintenanceIntervalSeconds !== undefined ? { maintenanceIntervalSeconds: options.maintenanceIntervalSeconds } : {}),
      ...(metricsOn ? { metrics: true } : {}),
    });
    if (options.metricsPort !== undefined) {
      const registries = [service.metrics, provider?.provider.metrics].filter((registry) => registry !== undefined);
      metricsServer = await startMetricsServer(options.metricsPort, registries).catch(async (error: unknown) => {
        await service.close();
        throw error;
      });
    }
  } catch (error) {
    await provider?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw error;
  }
  app = createApp({ service, logger, dbPath, databaseKind: database.kind === 'postgres' ? 'PostgreSQL' : 'SQLite', providerUrl: provider?.url ?? options.demoProviderUrl ?? options.trustProvider?.issuer });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await stopServer(server);
      if (metricsServer) await stopServer(metricsServer.server);
      await provider?.close();
      await service.close();
    })();
    return closing;
  };

  const { keys: _keys, ...keyEncryptionSource } = keyEncryption;
  const redis = options.redisUrl ? { location: redactDatabaseUrl(options.redisUrl) } : undefined;
  return { url, port, host, dbPath, database, ...(redis ? { redis } : {}), keyEncryption: keyEncryptionSource, server, service, provider, ...(metricsServer ? { metricsUrl: metricsServer.url } : {}), close };
}

/** How a service trusts the demo provider that runs at `url` (another replica's): what its `trustEntry` would say. */
export function demoProviderTrustEntry(url: string): DemoProviderTrustEntry {
  return { issuer: url, displayName: DEMO_PROVIDER_NAME, clientIds: [url + CIMD_PATH], jwksUri: url + JWKS_PATH };
}
