import { resolve } from 'node:path';

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
}

export const DEFAULT_TEST_PROVIDER_PORT = 8790;

export type SettingsOutcome = { ok: true; settings: DemoSettings } | { ok: false; message: string };

export const DEFAULT_PORT = 8787;
export const DEFAULT_HOST = '127.0.0.1';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * PORT (default 8787, 0 picks a free one), PROVIDER_PORT (the demo agent provider, default PORT + 1),
 * HOST (default 127.0.0.1; anything but loopback needs AUTHMD_DEMO_ALLOW_PUBLIC=1) and
 * AUTHMD_DATA_DIR (default ./data, relative to `cwd`).
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
        'It serves plain http, has no rate limits and keeps notes in memory: it is not meant to face a network.\n' +
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
  return { ok: true, settings: { port, providerPort, host, dataDir, public: isPublic, ...(testProviderPort === undefined ? {} : { testProviderPort }) } };
}

/**
 * The issuer for a bound address: the service names itself by the address agents reach it at. A
 * wildcard address (0.0.0.0, ::) is not reachable as such, so the demo names itself 127.0.0.1.
 */
export function issuerFor(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '::') return `http://127.0.0.1:${port}`;
  return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}
