import { testProviderTrustEntry } from '@authmd/conformance';
import { jsonLogger } from '@authmd/service';
import { join } from 'node:path';
import { renderBanner } from './banner.ts';
import { KEY_ENCRYPTION_KEY_FILE } from './key-encryption.ts';
import { terminalLogger } from './logger.ts';
import { smtpMailOption } from './mail-settings.ts';
import { issuerFor, readSettings } from './settings.ts';
import { DEMO_NAME, startDemo, type RunningDemo } from './start.ts';

/** `npm start`: read the environment, start the demo, say where everything is, stop cleanly on Ctrl+C. */

const outcome = readSettings(process.env, process.cwd());
if (!outcome.ok) {
  process.stderr.write(`${outcome.message}\n`);
  process.exit(1);
}
const settings = outcome.settings;
if (settings.public) {
  process.stderr.write(
    `Warning: listening on HOST=${settings.host} because AUTHMD_DEMO_ALLOW_PUBLIC=1. Other machines can reach this demo over plain http.\n`,
  );
}

let demo: RunningDemo;
try {
  demo = await startDemo({
    port: settings.port,
    // With AUTHMD_DEMO_PROVIDER_URL another replica runs the demo provider: this one runs none.
    providerPort: settings.demoProviderUrl ? undefined : settings.providerPort,
    host: settings.host,
    dataDir: settings.dataDir,
    keyEncryptionKey: process.env.AUTHMD_KEY_ENCRYPTION_KEY,
    ...(settings.databaseUrl ? { databaseUrl: settings.databaseUrl } : {}),
    ...(settings.publicUrl ? { publicUrl: settings.publicUrl } : {}),
    ...(settings.demoProviderUrl ? { demoProviderUrl: settings.demoProviderUrl } : {}),
    ...(settings.introspectionClients ? { introspection: { clients: settings.introspectionClients } } : {}),
    ...(settings.redisUrl ? { redisUrl: settings.redisUrl } : {}),
    admin: settings.admin,
    ...(settings.trustProxy !== undefined ? { trustProxy: settings.trustProxy, proxyHeader: settings.proxyHeader } : {}),
    // AUTHMD_SMTP_URL: real mail; otherwise the development mailbox (startDemo's default).
    ...(settings.smtp ? { mail: smtpMailOption(settings.smtp) } : {}),
    // The same records either way: readable lines, or the library's own JSON lines for a log pipeline.
    logger: settings.logFormat === 'json' ? jsonLogger() : terminalLogger(),
    trustProvider: settings.testProviderPort === undefined ? undefined : testProviderTrustEntry(settings.testProviderPort),
    ...(settings.metricsPort !== undefined ? { metricsPort: settings.metricsPort } : {}),
  });
} catch (error) {
  process.stderr.write(`${explainStartFailure(error)}\n`);
  process.exit(1);
}

process.stdout.write(`${renderBanner({ name: DEMO_NAME, url: demo.url, dbPath: demo.dbPath, database: demo.database, redis: demo.redis, listening: issuerFor(demo.host, demo.port), providerUrl: demo.provider?.url ?? settings.demoProviderUrl, keyEncryption: demo.keyEncryption, mail: settings.smtp && { location: settings.smtp.location, from: settings.smtp.from } })}\n`);
process.stdout.write(
  `Operator console at ${demo.url}/admin for ${settings.admin.operators!.join(', ')} (AUTHMD_OPERATORS; sign in with the emailed code)${settings.admin.apiTokens ? ', admin API with AUTHMD_ADMIN_TOKEN' : ''}.\n`,
);
if (demo.metricsUrl) process.stdout.write(`Prometheus metrics at ${demo.metricsUrl} (AUTHMD_METRICS_PORT; this machine only, never on the public port).\n`);
if (settings.testProviderPort !== undefined) {
  process.stdout.write(`Also trusting authmd check's test provider at http://127.0.0.1:${settings.testProviderPort} (AUTHMD_DEMO_TRUST_TEST_PROVIDER).\n`);
}

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    process.stderr.write(`${signal} again: exiting without waiting.\n`);
    process.exit(1);
  }
  stopping = true;
  process.stderr.write(`${signal}: stopping…\n`);
  demo.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`Stopping failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

function explainStartFailure(error: unknown): string {
  const { name, code, syscall, port: failedPort } = error as { name?: unknown; code?: unknown; syscall?: unknown; port?: unknown };
  if (syscall === 'listen') {
    // The listen error names its port: the demo's own (PORT) or its provider's (PROVIDER_PORT).
    const [variable, port] = failedPort === settings.providerPort && failedPort !== settings.port ? ['PROVIDER_PORT', settings.providerPort] : ['PORT', settings.port];
    if (code === 'EADDRINUSE') {
      const next = port === 65_535 ? 8788 : port + 1;
      return `Port ${port} (${variable}) is already in use on ${settings.host}. Stop whatever holds it, or pick another port: ${variable}=${next} npm start`;
    }
    if (code === 'EACCES') return `Not allowed to listen on ${settings.host}:${port} (${variable}). Ports below 1024 need privileges: try ${variable}=${variable === 'PORT' ? 8787 : 8788} npm start`;
    if (code === 'EADDRNOTAVAIL') return `HOST=${settings.host} is not an address of this machine.`;
  }
  if (name === 'StoragePathError') return `The demo could not start: ${(error as Error).message}`;
  if (name === 'KeyEncryptionError') {
    return (
      `The demo could not start: ${(error as Error).message}\n` +
      `Without AUTHMD_KEY_ENCRYPTION_KEY the demo uses the key in ${join(settings.dataDir, KEY_ENCRYPTION_KEY_FILE)}; the variable, when set, replaces it.`
    );
  }
  return `The demo could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}
