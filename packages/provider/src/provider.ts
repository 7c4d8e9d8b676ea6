import { silentLogger, toLogger, type Logger, type MetricsOptions, type MetricsRegistry } from '@authmd/core';
import { Keyring, resolveKeyEncryption, type KeyEncryptionOptions } from '@authmd/core/keys';
import type { Store } from '@authmd/core/store';
import { withoutTrailingSlash } from '@authmd/protocol';
import { AudienceDiscovery, checkAudience, isLoopbackHost, type ServiceMetadata } from './discovery.ts';
import { documentHandler, documentRoutes, documentUrls } from './documents.ts';
import { ProviderError } from './errors.ts';
import { defaultFetcher, type Fetcher } from './fetcher.ts';
import { grantFor, grantFromRow, upsertGrant, useGrant, type Grant } from './grants.ts';
import { checkMintRequest, signIdJag, type MintedIdJag, type MintRequest } from './mint.ts';
import { createProviderMetrics, noProviderMetrics } from './metrics.ts';
import { entryFromRow, Outbox, resolveOutboxOptions, type DeliveryReport, type OutboxEntry, type OutboxOptions } from './outbox.ts';
import { grants as grantsTable, providerTables, type GrantMode } from './schema.ts';

export interface ProviderOptions {
  /** The provider's issuer identifier: an https URL without a trailing slash (http on loopback with `allowLoopback`). */
  issuer: string;
  /** Where grants, the outbox and the signing keys live. Give the provider a store of its own (see README). */
  store: Store;
  /** Epoch milliseconds. Default Date.now. */
  clock?: () => number;
  /** Outbound HTTP (service metadata, SET delivery). Default: the SSRF-safe fetcher of `@authmd/core/fetch`. */
  fetcher?: Fetcher;
  /** Development only: http issuer on loopback, and outbound requests to 127.0.0.1 / ::1. Default false. */
  allowLoopback?: boolean;
  /** The `client_id` claim of minted ID-JAGs. Default: the CIMD URL `<issuer>/agent-auth.json`, which is then served. */
  clientId?: string;
  /** `client_name` of the CIMD document. Default 'Agent Auth Provider'. */
  clientName?: string;
  /** Default: silent. pino, or any logger with its `(fields, message)` convention and `child`, is accepted as is. */
  logger?: Logger;
  /** How long a consent grant lasts. Default 24 h. */
  grantTtlMs?: number;
  /** Lifetime of a minted ID-JAG. Default 300 s. */
  idJagLifetimeSeconds?: number;
  /** How long service metadata is reused. Default 5 min. */
  discoveryCacheMs?: number;
  /** Revocation SET delivery. */
  outbox?: OutboxOptions;
  /**
   * Prometheus metrics (prom-client, an optional peer dependency): off by default. `true` registers
   * the collectors (SET deliveries, outbox backlog) in a new registry, `provider.metrics`; or give your
   * own `registry` (the service's, say) and a name `prefix` (default `authmd_`).
   */
  metrics?: boolean | MetricsOptions;
  /** Signing keys: automatic rotation (default every 30 days) and how long a retired key stays published (default 1 h). */
  keys?: { rotateAfterMs?: number; publishAfterRetirementMs?: number };
  /**
   * Encryption of the private signing keys at rest, as for the service: default the keys in
   * AUTHMD_KEY_ENCRYPTION_KEY; without any, plaintext with a warning, refused when NODE_ENV=production
   * unless `allowPlaintext` is true. The keyring id is bound into every wrapped key, so one KEK can
   * serve a provider and a service without either's keys decrypting in the other's keyring.
   */
  keyEncryption?: KeyEncryptionOptions;
}

export interface CreateGrantInput {
  /** The service: its base URL, issuer or protected resource. It is resolved to the service's issuer. */
  audience: string;
  mode: GrantMode;
  /** Where to push the revocation SET; default the service's advertised `agent_auth.events_endpoint`. */
  eventsUri?: string;
}

/**
 * What came of telling the service, when `grants.delete` returned: `delivered` (the service accepted
 * the SET), `queued` (not yet: the outbox retries it), `failed` (the service refused it for good, or
 * its events endpoint cannot be used) or `none` (the service advertises no events endpoint).
 */
export type RevocationDelivery = 'delivered' | 'queued' | 'failed' | 'none';

export interface RevokedGrant {
  grant: Grant;
  /** The revocation SET for the service as it stands after the inline attempt, or null when the service advertises no events endpoint. */
  revocation: OutboxEntry | null;
  delivery: RevocationDelivery;
}

export interface AgentProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly jwksUri: string;
  readonly grants: {
    /** Records consent for agents to obtain ID-JAGs for this user and service; upserts per (user, service). */
    create(userId: string, input: CreateGrantInput): Promise<Grant>;
    /** The user's grants (active, consumed and expired ones: all can still be revoked), oldest first. */
    list(userId: string): Promise<Grant[]>;
    get(userId: string, grantId: string): Promise<Grant | undefined>;
    /**
     * Deletes the grant and, in the same transaction, queues the revocation SET; then makes one delivery
     * attempt before returning, bounded by `outbox.inlineTimeoutMs` (default 2 s), whose result is in
     * `delivery`. Undefined when no such grant of this user.
     */
    delete(userId: string, grantId: string): Promise<RevokedGrant | undefined>;
  };
  /** Mints an ID-JAG for a user who has a live grant for the audience. Throws ProviderError. */
  mintIdJag(request: MintRequest): Promise<MintedIdJag>;
  /** Resolves an audience to its service (cached). Throws ProviderError `invalid_audience`. */
  discover(audience: string): Promise<ServiceMetadata>;
  /** The JWK Set document (retired keys stay in it until what they signed has expired). */
  jwks(): { keys: Record<string, unknown>[] };
  /** Makes a new key the signing key; returns its `kid`. */
  rotateKeys(): Promise<string>;
  /** Serves the JWKS, RFC 8414 metadata and the CIMD document; 404 JSON for any other path. */
  handler(request: Request): Promise<Response>;
  /** Whether `handler` serves this path. */
  handles(pathname: string): boolean;
  readonly outbox: {
    list(filter?: { userId?: string }): Promise<OutboxEntry[]>;
  };
  /** Attempts every revocation SET that is due now. */
  deliverDue(): Promise<DeliveryReport>;
  /** Starts the delivery timer and key upkeep (idempotent). */
  start(): void;
  /** The prom-client registry of the provider's collectors when `metrics` is on; undefined when off. The provider serves it nowhere. */
  readonly metrics: MetricsRegistry | undefined;
  /** Stops the timers, waits for delivery runs in flight to record their outcome, and closes the store. */
  close(): Promise<void>;
}

const DAY = 86_400_000;

export async function createProvider(options: ProviderOptions): Promise<AgentProvider> {
  const allowLoopback = options.allowLoopback ?? false;
  const issuer = checkIssuer(options.issuer, allowLoopback);
  const clock = options.clock ?? Date.now;
  const logger = options.logger ? toLogger(options.logger) : silentLogger;
  const fetcher = options.fetcher ?? defaultFetcher;
  const grantTtlMs = options.grantTtlMs ?? DAY;
  const lifetimeSeconds = options.idJagLifetimeSeconds ?? 300;
  const urls = documentUrls(issuer);
  const clientId = options.clientId ?? urls.cimdUrl;
  const clientName = options.clientName ?? 'Agent Auth Provider';
  const outboxOptions = resolveOutboxOptions(options.outbox);
  const { store } = options;
  const keyEncryptionKeys = resolveKeyEncryption({ options: options.keyEncryption, env: process.env, logger, what: 'agent provider' });
  // prom-client is imported only when metrics are on; before anything is stored, should it be missing.
  const observed = options.metrics ? await createProviderMetrics(options.metrics, store) : undefined;
  const metrics = observed?.metrics ?? noProviderMetrics;

  await store.migrate(providerTables);
  const keyring = await Keyring.open({
    store,
    algorithm: 'ES256',
    clock,
    logger,
    publishAfterRetirementMs: options.keys?.publishAfterRetirementMs ?? 3_600_000,
    rotateAfterMs: options.keys?.rotateAfterMs ?? 30 * DAY,
    // Its own row: a provider sharing a store with a service never signs with the service's key.
    id: 'provider',
    keyEncryptionKeys,
  });
  const discovery = new AudienceDiscovery({ fetcher, allowLoopback, clock, cacheMs: options.discoveryCacheMs ?? 300_000 });
  const outbox = new Outbox({ store, clock, fetcher, allowLoopback, issuer, keyring, discovery, logger, options: outboxOptions, metrics });
  const routes = documentRoutes(urls, keyring, clientId, clientName);
  const serveDocument = documentHandler(routes);

  let deliveryTimer: NodeJS.Timeout | undefined;
  let upkeepTimer: NodeJS.Timeout | undefined;
  let delivering: Promise<unknown> | undefined;
  let closed = false;

  // Every delivery run in flight, so that close() lets them record their outcome before the store closes.
  const runs = new Set<Promise<unknown>>();
  const tracked = <T>(start: () => Promise<T>): Promise<T> => {
    const run = start().finally(() => runs.delete(run));
    runs.add(run);
    return run;
  };
  const deliverDue = (): Promise<DeliveryReport> => {
    if (closed) return Promise.resolve({ attempted: 0, delivered: 0, retrying: 0, failed: 0 });
    return tracked(() => outbox.deliverDue());
  };
  const runDelivery = (): void => {
    if (delivering || closed) return;
    delivering = deliverDue()
      .catch((error: unknown) => logger.error('revocation SET delivery run failed', { error: String(error) }))
      .finally(() => {
        delivering = undefined;
      });
  };

  const upkeep = async (): Promise<void> => {
    try {
      await keyring.maintain();
      await store.purgeExpired(clock());
    } catch (error) {
      logger.error('provider upkeep failed', { error: String(error) });
    }
  };

  const grantsApi: AgentProvider['grants'] = {
    async create(userId, input) {
      requireUserId(userId);
      if (input.mode !== 'once' && input.mode !== 'always') throw new ProviderError('invalid_request', 'mode must be "once" or "always".');
      if (input.eventsUri !== undefined) checkUrl(input.eventsUri, 'events_uri', allowLoopback);
      const service = await discovery.resolve(input.audience);
      const row = await upsertGrant(store, {
        userId,
        audience: service.issuer,
        mode: input.mode,
        eventsUri: input.eventsUri ?? service.eventsEndpoint,
        now: clock(),
        ttlMs: grantTtlMs,
      });
      logger.info('consent granted', { user_id: userId, audience: row.audience, mode: row.mode, grant_id: row.id });
      return grantFromRow(row, clock());
    },

    async list(userId) {
      const now = clock();
      const rows = await store.findMany(grantsTable, 'user_id', userId);
      return rows.sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id)).map((row) => grantFromRow(row, now));
    },

    async get(userId, grantId) {
      const row = await store.get(grantsTable, grantId);
      return row && row.user_id === userId ? grantFromRow(row, clock()) : undefined;
    },

    async delete(userId, grantId) {
      const existing = await store.get(grantsTable, grantId);
      if (!existing || existing.user_id !== userId) return undefined;
      // The whole of it (metadata lookup and inline attempt) answers within inlineTimeoutMs, in real time.
      const budget = outboxOptions.inlineTimeoutMs;
      const started = performance.now();
      const remaining = (): number => budget - (performance.now() - started);
      // Where the SET goes: the grant's events URI; else what the service advertises now (looked up
      // before the transaction, which must not wait on the network); else, if the service cannot be
      // reached in time, the outbox resolves it at delivery time.
      let endpoint = existing.events_uri;
      let notify = true;
      if (!endpoint) {
        try {
          const resolving = discovery.resolve(existing.audience);
          resolving.catch(() => {}); // a lookup that outlives the budget may still fail: nobody waits for it then
          const service = budget > 0 ? await within(resolving, budget) : await resolving;
          endpoint = service === TIMED_OUT ? null : service.eventsEndpoint;
          notify = service === TIMED_OUT || endpoint !== null;
        } catch {
          endpoint = null;
        }
      }
      const now = clock();
      const result = await store.transaction(async (tx) => {
        const row = await tx.get(grantsTable, grantId);
        if (!row || row.user_id !== userId) return undefined;
        await tx.delete(grantsTable, grantId);
        const queued = notify ? await outbox.enqueue(tx, row, endpoint, now) : null;
        return { row, queued };
      });
      if (!result) return undefined;
      logger.info('consent revoked', { user_id: userId, audience: result.row.audience, grant_id: grantId, set_jti: result.queued?.id });
      const grant = grantFromRow(result.row, now);
      const queued = result.queued;
      if (!queued) return { grant, revocation: null, delivery: 'none' };
      if (budget <= 0 || remaining() <= 0 || closed) {
        if (deliveryTimer) setImmediate(runDelivery);
        return { grant, revocation: entryFromRow(queued), delivery: 'queued' };
      }
      // One attempt now, so that the service usually has the SET before the user sees the answer. It
      // is committed to the outbox already: whatever happens here, the outbox retries it when due.
      // The request's own timeout ends a little before the budget, so that its outcome is usually on
      // record when we answer; the budget is the hard limit either way.
      const requestTimeoutMs = remaining() - Math.min(100, remaining() / 4);
      const attempt = tracked(() => outbox.deliverNow(queued, requestTimeoutMs)).catch((error: unknown) => {
        logger.error('revocation SET delivery attempt failed', { jti: queued.id, error: String(error) });
        return 'skipped' as const;
      });
      const outcome = await within(attempt, remaining());
      const delivery: RevocationDelivery = outcome === 'delivered' ? 'delivered' : outcome === 'failed' ? 'failed' : 'queued';
      const revocation = closed ? entryFromRow(queued) : ((await outbox.get(queued.id).catch(() => undefined)) ?? entryFromRow(queued));
      return { grant, revocation, delivery };
    },
  };

  const provider: AgentProvider = {
    issuer,
    clientId,
    jwksUri: urls.jwksUri,
    grants: grantsApi,

    async mintIdJag(request) {
      checkMintRequest(request);
      const service = await discovery.resolve(request.audience);
      // A `once` grant is consumed by compare-and-set; a concurrent re-consent makes the read stale, so re-read a few times.
      let usable = false;
      for (let tries = 0; tries < 3 && !usable; tries++) {
        const row = await grantFor(store, request.user.id, service.issuer);
        if (!row) break;
        usable = await useGrant(store, row, clock());
        if (!usable && (row.consumed_at !== null || row.expires_at <= clock())) break;
      }
      if (!usable) throw new ProviderError('consent_required', `The user has not (or no longer) consented to agents acting at ${service.issuer}.`);
      const assertion = await signIdJag(keyring, { issuer, clientId, audience: service.issuer, nowMs: clock(), lifetimeSeconds }, request);
      logger.info('ID-JAG minted', { user_id: request.user.id, audience: service.issuer, agent_platform: request.agentPlatform });
      return { assertion, expiresIn: lifetimeSeconds };
    },

    discover: (audience) => discovery.resolve(audience),

    jwks: () => JSON.parse(keyring.jwks()) as { keys: Record<string, unknown>[] },

    async rotateKeys() {
      return (await keyring.rotate()).kid;
    },

    handler: (request) => serveDocument(request),
    handles: (pathname) => routes.has(pathname),

    outbox: { list: (filter) => outbox.list(filter) },

    deliverDue,

    metrics: observed?.registry,

    start() {
      if (closed || deliveryTimer) return;
      deliveryTimer = setInterval(runDelivery, outboxOptions.pollIntervalMs);
      deliveryTimer.unref();
      upkeepTimer = setInterval(() => void upkeep(), 3_600_000);
      upkeepTimer.unref();
      runDelivery();
    },

    async close() {
      if (closed) return;
      closed = true;
      clearInterval(deliveryTimer);
      clearInterval(upkeepTimer);
      await Promise.allSettled([...runs]);
      await store.close();
    },
  };
  return provider;
}

const TIMED_OUT = Symbol('timed out');

/** The promise's value, or TIMED_OUT when it has not settled within `ms` (it then goes on unobserved). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function checkIssuer(issuer: string, allowLoopback: boolean): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new Error(`issuer must be an absolute URL (got ${JSON.stringify(issuer)})`);
  }
  const loopbackHttp = url.protocol === 'http:' && allowLoopback && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) throw new Error('issuer must be an https URL (http only on loopback, with allowLoopback)');
  if (url.search || url.hash || url.username || url.password) throw new Error('issuer must not have a query, fragment or credentials');
  if (issuer !== withoutTrailingSlash(issuer) || issuer !== url.origin + withoutTrailingSlash(url.pathname)) {
    throw new Error(`issuer must be written without a trailing slash, in normalized form (${url.origin}${withoutTrailingSlash(url.pathname)})`);
  }
  return issuer;
}

function checkUrl(value: string, name: string, allowLoopback: boolean): void {
  try {
    checkAudience(value, allowLoopback);
  } catch {
    throw new ProviderError('invalid_request', `${name} must be an https URL${allowLoopback ? ' (or http on loopback)' : ''} without credentials or fragment.`);
  }
}

function requireUserId(userId: string): void {
  if (typeof userId !== 'string' || userId === '') throw new ProviderError('invalid_request', 'A user id is required.');
}
