import { jsonLogger, toLogger, type Logger, type MetricsRegistry } from '@authmd/core';
import { safeFetch } from '@authmd/core/fetch';
import { Keyring, resolveKeyEncryption } from '@authmd/core/keys';
import { createMemoryStore, type Store } from '@authmd/core/store';
import { storeAuditSink } from './audit.ts';
import { ConfigError, resolveConfig, type MailOptions, type ServiceConfig, type ServiceOptions } from './config.ts';
import { VerifiedAssertions } from './engine/verified-assertions.ts';
import { AccessTokens } from './engine/access-tokens.ts';
import type { EngineContext } from './engine/context.ts';
import { revokeRegistration } from './engine/registrations.ts';
import { fetchHandler, type FetchHandler } from './adapters/fetch.ts';
import type { HttpRequest, HttpResponse } from './http/env.ts';
import { allowedMethods, buildRoutes, createDispatch } from './http/handler.ts';
import { createMetrics, noMetrics } from './metrics.ts';
import type { Mailer } from './mail/mailer.ts';
import { DevOutbox } from './mail/outbox.ts';
import { smtpMailer } from './mail/smtp.ts';
import { runMaintenance } from './engine/maintenance.ts';
import { loadServiceSecret } from './engine/service-secret.ts';
import { TrustList } from './trust/trust-list.ts';
import { createGuard, type Guard, type ProtectOptions } from './protect.ts';
import { serviceTables } from './schema.ts';
import { cryptoRandom } from './secrets.ts';

export interface AuthmdService {
  readonly config: ServiceConfig;
  readonly store: Store;
  /** The Web-standard handler for every protocol path (discovery, registration, tokens). */
  readonly handler: FetchHandler;
  /** The same, below the Web types: what host adapters call (see adapters/node.ts). */
  readonly dispatch: (request: HttpRequest) => Promise<HttpResponse>;
  /** Whether `pathname` is one of the service's own paths (adapters pass everything else on). */
  handles(pathname: string): boolean;
  /** The methods one of the service's paths answers; empty for paths that are not the service's. */
  allowedMethods(pathname: string): string[];
  /** Every path the service answers: for frameworks that route before any middleware runs (Fastify). */
  readonly paths: readonly string[];
  /** A guard for an API route: bearer token, resource binding, scopes. */
  protect(options?: ProtectOptions): Guard;
  /** Operator action: a registration, its assertions and its tokens stop working. */
  revokeRegistration(registrationId: string): Promise<boolean>;
  /** Makes a new signing key active; the old one stays published until its assertions expire. */
  rotateKeys(): Promise<void>;
  /** Purges expired rows and looks after the keyring; runs on a timer unless switched off. */
  maintain(): Promise<void>;
  /**
   * The prom-client registry holding the service's collectors when the `metrics` option is on (the
   * one given, or a new one); undefined when off. Serve `await registry.metrics()` (content type
   * `registry.contentType`) where only your scraper reaches it: the service's handler never does.
   */
  readonly metrics: MetricsRegistry | undefined;
  /** Stops the timer and closes the store. */
  close(): Promise<void>;
}

export async function createService(options: ServiceOptions): Promise<AuthmdService> {
  const config = resolveConfig(options);
  const logger = options.logger ? toLogger(options.logger) : jsonLogger();
  const clock = options.clock ?? Date.now;
  const random = options.random ?? cryptoRandom;
  // Before anything is stored: without a key-encryption key this warns, or refuses in production.
  const keyEncryptionKeys = resolveKeyEncryption({ options: options.keyEncryption, env: process.env, logger, what: 'service' });
  checkDevelopmentSettings(config, { storeGiven: options.store !== undefined, devMailbox: usesDevOutbox(options.mail), production: process.env.NODE_ENV === 'production', logger });
  const store = options.store ?? createMemoryStore();
  // prom-client is imported only here, when metrics are on (and before anything is stored, should it be missing).
  const observed = options.metrics ? await createMetrics(options.metrics) : undefined;

  await store.migrate(serviceTables);
  const keys = await Keyring.open({
    store,
    algorithm: config.signing.algorithm,
    clock,
    logger,
    publishAfterRetirementMs: config.lifetimes.assertionMs + config.clockSkewMs,
    rotateAfterMs: config.signing.rotateAfterMs,
    keyEncryptionKeys,
  });
  const { mailer, outbox, close: closeMailer } = createMailer(options.mail, clock);
  const ctx: EngineContext = {
    config,
    store,
    keys,
    clock,
    random,
    logger,
    audit: options.audit ?? storeAuditSink({ random, logger, retentionMs: config.auditRetentionMs }),
    tokens: new AccessTokens(store, random, clock, config.tokenCacheMs, logger),
    verifiedAssertions: new VerifiedAssertions(clock),
    secret: await loadServiceSecret(store),
    mailer,
    signIn: options.signIn ?? {},
    trust: new TrustList(config.trust.issuers, { fetcher: options.fetcher ?? safeFetch, clock, allowLoopback: config.trust.allowLoopback, logger, channel: store }),
    metrics: observed?.metrics ?? noMetrics,
  };
  const routes = buildRoutes(ctx, outbox);
  const dispatch = createDispatch(ctx, routes);

  const maintain = () => runMaintenance(ctx);
  const timer =
    config.maintenanceIntervalMs > 0
      ? setInterval(() => maintain().catch((error) => logger.error('maintenance failed', { error: String(error) })), config.maintenanceIntervalMs)
      : undefined;
  timer?.unref();

  return {
    config,
    store,
    handler: fetchHandler(dispatch),
    dispatch,
    handles: (pathname) => routes.has(pathname),
    allowedMethods: (pathname) => allowedMethods(routes, pathname),
    paths: [...routes.keys()],
    protect: (protectOptions) => createGuard(ctx, protectOptions),
    revokeRegistration: (registrationId) => revokeRegistration(ctx, registrationId),
    rotateKeys: async () => {
      await keys.rotate();
    },
    maintain,
    metrics: observed?.registry,
    close: async () => {
      clearInterval(timer);
      closeMailer?.();
      ctx.tokens.close();
      ctx.trust.close();
      keys.close();
      await store.close();
    },
  };
}

/** Whether codes go to the development outbox: no SMTP server and no mailer of the host's. */
function usesDevOutbox(options: MailOptions | undefined): boolean {
  return !options || !('smtp' in options || 'mailer' in options);
}

/** SMTP, the caller's own mailer, or the development outbox (see checkDevelopmentSettings). */
function createMailer(options: MailOptions | undefined, clock: () => number): { mailer: Mailer; outbox?: DevOutbox; close?: () => void } {
  if (options && 'smtp' in options) {
    const mailer = smtpMailer(options.smtp, options.from);
    return { mailer, close: () => mailer.close() };
  }
  if (options && 'mailer' in options) return { mailer: options.mailer };
  const outbox = new DevOutbox(clock);
  return { mailer: outbox, outbox };
}

/**
 * Settings fit for development only: each is a warning at start, and with NODE_ENV=production a
 * refusal to start, naming the setting and the fix (plaintext signing keys are checked where the
 * provider's are too, in resolveKeyEncryption).
 */
function checkDevelopmentSettings(config: ServiceConfig, context: { storeGiven: boolean; devMailbox: boolean; production: boolean; logger: Logger }): void {
  const { production, logger } = context;
  const unsafe = (setting: string, problem: string, fix: string) => {
    if (production) throw new ConfigError(`${setting}: ${problem}; not with NODE_ENV=production. ${fix}`);
    logger.warn(`${setting}: ${problem}. ${fix}`);
  };
  if (!context.storeGiven) {
    unsafe('store', 'none configured, so the in-memory store is used, which loses every registration and token when the process stops', 'Configure SQLite or PostgreSQL (or pass createMemoryStore() to mean it)');
  }
  if (context.devMailbox) {
    unsafe('mail', 'sign-in and claim codes go to the development outbox at /dev/mailbox, readable by anyone who can reach it', 'Configure an SMTP server (mail.smtp) or a mailer');
  }
  const url = new URL(config.issuer);
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol === 'http:' && !loopback) {
    unsafe('issuer', `${config.issuer} is plain http on a non-loopback host, so tokens and claim codes travel unencrypted`, 'Serve it over https');
  }
  if (config.trust.allowLoopback) {
    unsafe('trust.allowLoopback', 'provider keys and client metadata may be fetched from loopback over http', 'It is for development with a provider on this machine only');
  }
}
