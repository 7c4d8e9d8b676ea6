import { resolve } from 'node:path';
import type { ServiceOptions } from '@authmd/service';
import { readAdminSettings } from './admin-settings.ts';
import { readMailSettings, type DemoSmtp } from './mail-settings.ts';
import { readProxySettings } from './proxy-settings.ts';

/** What `npm start` reads from the environment. */
export interface DemoSettings {
  port: number;
  /** The demo agent provider's port: PROVIDER_PORT, default PORT + 1 (0 when PORT is 0). */
  providerPort: number;
  host: string;
  dataDir: string;
  /** True when HOST is not a loopback address (only possible with AUTHMD_DEMO_ALLOW_PUBLIC=1). */
  public: boolean;
  /** Also trust `authmd check`'s test provider on this 127.0.0.1 port (AUTHMD_DEMO_TRUST_TEST_PROVIDER: 1 for 8790, or a port). */
  testProviderPort?: number;
  /** AUTHMD_DATABASE_URL: run on this PostgreSQL database instead of SQLite under `dataDir`. */
  databaseUrl?: string;
  /** AUTHMD_PUBLIC_URL: the issuer URL every replica names (what a load balancer in front answers), without a trailing slash. */
  publicUrl?: string;
  /**
   * AUTHMD_DEMO_PROVIDER_URL: the demo provider another replica runs. This process then runs none of
   * its own and trusts that one, so that every replica describes the same service.
   */
  demoProviderUrl?: string;
  /**
   * AUTHMD_INTROSPECTION_CLIENTS: resource servers in other processes that may call RFC 7662
   * introspection (`POST /oauth2/introspect`, HTTP Basic), as `id:secret` pairs separated by commas.
   * Unset: introspection is off. Give every replica the same list, so that they publish the same metadata.
   */
  introspectionClients?: { id: string; secret: string }[];
  /** AUTHMD_REDIS_URL: keep the rate-limit counters and the cache invalidation channel in this Redis (optional). */
  redisUrl?: string;
  /** AUTHMD_LOG_FORMAT: `text` (default, one readable line per record) or `json` (the library's pino-format lines). */
  logFormat: 'text' | 'json';
  /** AUTHMD_TRUST_PROXY: the proxies in front, as a count or their addresses (ServiceOptions.trustProxy); see proxy-settings.ts. */
  trustProxy?: number | string[];
  /** AUTHMD_PROXY_HEADER: the header those proxies append to (ServiceOptions.proxyHeader). */
  proxyHeader?: 'x-forwarded-for' | 'forwarded';
  /** AUTHMD_SMTP_URL and AUTHMD_MAIL_FROM: send mail through this SMTP server instead of the development mailbox. */
  smtp?: DemoSmtp;
  /** AUTHMD_METRICS_PORT: serve Prometheus metrics at http://127.0.0.1:<port>/metrics (0: any free port); unset, metrics are off. */
  metricsPort?: number;
  /** AUTHMD_OPERATORS and AUTHMD_ADMIN_TOKEN: who may use the console at /admin and the admin API (admin-settings.ts). */
  admin: NonNullable<ServiceOptions['admin']>;
}

export const DEFAULT_TEST_PROVIDER_PORT = 8790;

export type SettingsOutcome = { ok: true; settings: DemoSettings } | { ok: false; message: string };

export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = '127.0.0.1';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * PORT (default 8787, 0 picks a free one), PROVIDER_PORT (the demo agent provider, default PORT + 1),
 * HOST (default 127.0.0.1; anything but loopback needs AUTHMD_DEMO_ALLOW_PUBLIC=1) and
 * AUTHMD_DATA_DIR (default ./data, relative to `cwd`), AUTHMD_DATABASE_URL (PostgreSQL instead of
 * SQLite; needs AUTHMD_KEY_ENCRYPTION_KEY), AUTHMD_PUBLIC_URL (the issuer replicas share) and
 * AUTHMD_DEMO_PROVIDER_URL (trust another replica's demo provider instead of running one) and
 * AUTHMD_INTROSPECTION_CLIENTS (`id:secret,…`: who may call the introspection endpoint) and
 * AUTHMD_REDIS_URL (rate-limit counters and cache invalidation in Redis) and AUTHMD_SMTP_URL
 * (`smtp://user:password@host:587` or `smtps://…:465`: send the sign-in and claim codes through that
 * server; unset, they stay in the development mailbox) with AUTHMD_MAIL_FROM (the From header; default
 * `authmd demo notes <SMTP user>` when the user name is an address, else `…<no-reply@localhost>`).
 * See mail-settings.ts. AUTHMD_TRUST_PROXY and AUTHMD_PROXY_HEADER: the proxies that may name the
 * client address (proxy-settings.ts). AUTHMD_LOG_FORMAT: `text` or `json`. AUTHMD_METRICS_PORT: Prometheus
 * metrics on 127.0.0.1 at that port (metrics-server.ts). No message repeats a URL or a secret.
 */
export function readSettings(env: NodeJS.ProcessEnv, cwd: string): SettingsOutcome {
  const rawPort = env.PORT?.trim() || String(DEFAULT_PORT);
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port >= 0 && port <= 65_535)) {
    return { ok: false, message: `PORT must be a whole number from 0 to 65535 (got "${env.PORT}"). Example: PORT=8788 npm start` };
  }

  const host = env.HOST?.trim() || DEFAULT_HOST;
  const isPublic = !LOOPBACK.has(host);
  if (isPublic && env.AUTHMD_DEMO_ALLOW_PUBLIC !== '1') {
    return {
      ok: false,
      message:
        `Refusing to listen on HOST=${host}: the demo only binds to this machine (127.0.0.1) unless told otherwise.\n` +
        'It serves plain http, its limits are set for one person trying it by hand, and it keeps notes in memory: it is not meant to face a network.\n' +
        `To do it anyway: AUTHMD_DEMO_ALLOW_PUBLIC=1 HOST=${host} npm start`,
    };
  }

  const rawProviderPort = env.PROVIDER_PORT?.trim() || String(port === 0 ? 0 : port + 1);
  const providerPort = /^\d{1,5}$/.test(rawProviderPort) ? Number(rawProviderPort) : NaN;
  if (!(providerPort >= 0 && providerPort <= 65_535) || (providerPort !== 0 && providerPort === port)) {
    return { ok: false, message: `PROVIDER_PORT must be a free port from 0 to 65535 other than PORT (got "${env.PROVIDER_PORT}"). Example: PROVIDER_PORT=8790 npm start` };
  }

  const rawTestProvider = env.AUTHMD_DEMO_TRUST_TEST_PROVIDER?.trim() || undefined;
  const testProviderPort = rawTestProvider === undefined ? undefined : rawTestProvider === '1' ? DEFAULT_TEST_PROVIDER_PORT : /^\d{1,5}$/.test(rawTestProvider) ? Number(rawTestProvider) : NaN;
  if (testProviderPort !== undefined && !(testProviderPort > 1 && testProviderPort <= 65_535)) {
    return { ok: false, message: `AUTHMD_DEMO_TRUST_TEST_PROVIDER must be 1 (port ${DEFAULT_TEST_PROVIDER_PORT}) or the port authmd check's test provider uses (got "${rawTestProvider}").` };
  }

  const dataDir = resolve(cwd, env.AUTHMD_DATA_DIR?.trim() || './data');

  const databaseUrl = env.AUTHMD_DATABASE_URL?.trim() || undefined;
  if (databaseUrl !== undefined) {
    const parsed = URL.canParse(databaseUrl) ? new URL(databaseUrl) : undefined;
    if (!parsed || (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') || !parsed.hostname) {
      return { ok: false, message: 'AUTHMD_DATABASE_URL must be a PostgreSQL URL. Example: AUTHMD_DATABASE_URL=postgres://authmd@127.0.0.1:5432/authmd npm start' };
    }
    // The stored signing keys are encrypted: every replica on this database needs the same key, so it cannot come from a per-machine file.
    if (!env.AUTHMD_KEY_ENCRYPTION_KEY?.trim()) {
      return {
        ok: false,
        message:
          'With AUTHMD_DATABASE_URL the demo needs AUTHMD_KEY_ENCRYPTION_KEY as well: every replica on the database must decrypt the same stored signing keys.\n' +
          'Generate one once and give it to every replica:\n' +
          `  export AUTHMD_KEY_ENCRYPTION_KEY=$(node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))")`,
      };
    }
  }

  const rawPublicUrl = env.AUTHMD_PUBLIC_URL?.trim() || undefined;
  const publicUrl = rawPublicUrl === undefined ? undefined : normalisePublicUrl(rawPublicUrl);
  if (publicUrl === null) {
    return { ok: false, message: `AUTHMD_PUBLIC_URL must be an http(s) URL without query or fragment (got "${rawPublicUrl}"). Example: AUTHMD_PUBLIC_URL=http://127.0.0.1:8787 npm start` };
  }

  const rawProviderUrl = env.AUTHMD_DEMO_PROVIDER_URL?.trim() || undefined;
  const demoProviderUrl = rawProviderUrl === undefined ? undefined : normalisePublicUrl(rawProviderUrl);
  if (demoProviderUrl === null) {
    return { ok: false, message: `AUTHMD_DEMO_PROVIDER_URL must be the http URL of the demo provider another replica runs (got "${rawProviderUrl}"). Example: AUTHMD_DEMO_PROVIDER_URL=http://127.0.0.1:8788` };
  }

  const introspection = readIntrospectionClients(env.AUTHMD_INTROSPECTION_CLIENTS);
  if (introspection !== undefined && !Array.isArray(introspection)) return introspection;

  const redisUrl = env.AUTHMD_REDIS_URL?.trim() || undefined;
  if (redisUrl !== undefined) {
    const parsed = URL.canParse(redisUrl) ? new URL(redisUrl) : undefined;
    // The message never repeats the URL: it may hold a password.
    if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname) {
      return { ok: false, message: 'AUTHMD_REDIS_URL must be a Redis URL. Example: AUTHMD_REDIS_URL=redis://127.0.0.1:6379 npm start' };
    }
  }

  const mail = readMailSettings(env);
  if (!mail.ok) return mail;

  const proxies = readProxySettings(env);
  if (!proxies.ok) return proxies;

  const admin = readAdminSettings(env);
  if (!admin.ok) return admin;

  // Never on the public port: a server of its own, on 127.0.0.1 only, for a scraper on this machine.
  const rawMetricsPort = env.AUTHMD_METRICS_PORT?.trim() || undefined;
  const metricsPort = rawMetricsPort === undefined ? undefined : /^\d{1,5}$/.test(rawMetricsPort) ? Number(rawMetricsPort) : NaN;
  if (metricsPort !== undefined && (!(metricsPort >= 0 && metricsPort <= 65_535) || (metricsPort !== 0 && (metricsPort === port || metricsPort === providerPort)))) {
    return { ok: false, message: `AUTHMD_METRICS_PORT must be a free port from 0 to 65535 other than PORT and PROVIDER_PORT (got "${rawMetricsPort}"). Example: AUTHMD_METRICS_PORT=9464 npm start` };
  }

  const logFormat = env.AUTHMD_LOG_FORMAT?.trim().toLowerCase() || 'text';
  if (logFormat !== 'text' && logFormat !== 'json') {
    return { ok: false, message: `AUTHMD_LOG_FORMAT must be text or json (got "${env.AUTHMD_LOG_FORMAT}"). Example: AUTHMD_LOG_FORMAT=json npm start` };
  }

  return {
    ok: true,
    settings: {
      port,
      providerPort,
      host,
      dataDir,
      public: isPublic,
      logFormat,
      admin: admin.admin,
      ...(testProviderPort === undefined ? {} : { testProviderPort }),
      ...(databaseUrl === undefined ? {} : { databaseUrl }),
      ...(publicUrl === undefined ? {} : { publicUrl }),
      ...(demoProviderUrl === undefined ? {} : { demoProviderUrl }),
      ...(introspection === undefined ? {} : { introspectionClients: introspection }),
      ...(redisUrl === undefined ? {} : { redisUrl }),
      ...(mail.smtp === undefined ? {} : { smtp: mail.smtp }),
      ...(proxies.trustProxy === undefined ? {} : { trustProxy: proxies.trustProxy }),
      ...(proxies.proxyHeader === undefined ? {} : { proxyHeader: proxies.proxyHeader }),
      ...(metricsPort === undefined ? {} : { metricsPort }),
    },
  };
}

/** The shortest introspection secret the service accepts (ServiceOptions.introspection). */
export const MIN_INTROSPECTION_SECRET = 32;

/**
 * AUTHMD_INTROSPECTION_CLIENTS: `id:secret` pairs, comma-separated (the id has no colon; the secret,
 * at least 32 characters, has no comma). Undefined when unset; a refusal never repeats a secret.
 */
function readIntrospectionClients(raw: string | undefined): { id: string; secret: string }[] | undefined | { ok: false; message: string } {
  const value = raw?.trim();
  if (!value) return undefined;
  const example = 'Example: AUTHMD_INTROSPECTION_CLIENTS=notes-rs:<a random secret of 32 or more characters>,other-rs:<another>';
  const clients: { id: string; secret: string }[] = [];
  for (const [index, entry] of value.split(',').entries()) {
    const colon = entry.indexOf(':');
    const id = colon < 0 ? '' : entry.slice(0, colon).trim();
    const secret = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (!id || !secret) return { ok: false, message: `AUTHMD_INTROSPECTION_CLIENTS: entry ${index + 1} is not id:secret. ${example}` };
    if (secret.length < MIN_INTROSPECTION_SECRET) {
      return { ok: false, message: `AUTHMD_INTROSPECTION_CLIENTS: the secret of ${id} must be at least ${MIN_INTROSPECTION_SECRET} characters (a random value). ${example}` };
    }
    if (clients.some((client) => client.id === id)) return { ok: false, message: `AUTHMD_INTROSPECTION_CLIENTS: ${id} is listed twice.` };
    clients.push({ id, secret });
  }
  return clients;
}

/** An http(s) URL as an issuer: origin and path, no trailing slash; null when it cannot be one. */
function normalisePublicUrl(raw: string): string | null {
  if (!URL.canParse(raw)) return null;
  const url = new URL(raw);
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash || url.username || url.password) return null;
  return `${url.origin}${url.pathname}`.replace(/\/+$/, '');
}

/** A database (PostgreSQL or Redis) URL fit for a banner or a log: scheme, user, host, port and database; never the password or the query. */
export function redactDatabaseUrl(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const user = url.username ? `${url.username}@` : '';
  return `${url.protocol}//${user}${url.host}${url.pathname}`;
}

/**
 * The issuer for a bound address: the service names itself by the address agents reach it at. A
 * wildcard address (0.0.0.0, ::) is not reachable as such, so the demo names itself 127.0.0.1.
 */
export function issuerFor(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::') return `http://127.0.0.1:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
