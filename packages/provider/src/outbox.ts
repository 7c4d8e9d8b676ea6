import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from '@authmd/core';
import { encodeJwt, type Keyring } from '@authmd/core/keys';
import type { Store, StoreTx } from '@authmd/core/store';
import { eventSchemas, jwtTypes, mediaTypes } from '@authmd/protocol';
import type { AudienceDiscovery } from './discovery.ts';
import { errorMessage, fetchFailure, isPermanentFetchFailure, type Fetcher } from './fetcher.ts';
import { outbox, type GrantRow, type OutboxRow, type OutboxStatus } from './schema.ts';
import type { ProviderMetrics } from './metrics.ts';

/** Each delivery attempt is a span (a child of the host's active span, if any): the API's no-op without an SDK. */
const tracer = trace.getTracer('@authmd/provider');

export interface OutboxOptions {
  /** Delay before the first retry; doubles with every failed attempt. Default 2 s. */
  initialDelayMs?: number;
  /** The longest delay between attempts. Default 10 min. */
  maxDelayMs?: number;
  /** How long a worker owns a row it is delivering; must exceed the request timeout. Default 60 s. */
  leaseMs?: number;
  /** Timeout of one delivery request. Default 10 s. */
  timeoutMs?: number;
  /**
   * How long `grants.delete` waits for one delivery attempt made before it returns (service metadata
   * lookup included), so that the delegation is usually dead at the service by the time the user sees
   * the answer. A SET not delivered by then stays queued for the outbox. 0: queue only. Default 2 s.
   */
  inlineTimeoutMs?: number;
  /** Rows handled per `deliverDue()`. Default 50. */
  batchSize?: number;
  /** How long delivered and failed rows stay listed. Default 7 days. */
  retentionMs?: number;
  /** A SET still undelivered this long after the revocation is recorded as failed. Default 7 days. */
  giveUpAfterMs?: number;
  /** How often `start()` looks for due rows. Default 1 s. */
  pollIntervalMs?: number;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
}

export type ResolvedOutboxOptions = Required<OutboxOptions>;

export function resolveOutboxOptions(options: OutboxOptions = {}): ResolvedOutboxOptions {
  const resolved: ResolvedOutboxOptions = {
    initialDelayMs: options.initialDelayMs ?? 2000,
    maxDelayMs: options.maxDelayMs ?? 10 * 60_000,
    leaseMs: options.leaseMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 10_000,
    inlineTimeoutMs: options.inlineTimeoutMs ?? 2000,
    batchSize: options.batchSize ?? 50,
    retentionMs: options.retentionMs ?? 7 * 86_400_000,
    giveUpAfterMs: options.giveUpAfterMs ?? 7 * 86_400_000,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    random: options.random ?? Math.random,
  };
  if (resolved.leaseMs < 2 * resolved.timeoutMs) throw new Error('outbox.leaseMs must be at least twice outbox.timeoutMs, so that a lease never ends mid-request');
  if (!(resolved.inlineTimeoutMs >= 0)) throw new Error('outbox.inlineTimeoutMs must be 0 (queue only) or a positive number of milliseconds');
  if (resolved.initialDelayMs <= 0 || resolved.maxDelayMs < resolved.initialDelayMs) throw new Error('outbox delays must be positive, with maxDelayMs ≥ initialDelayMs');
  return resolved;
}

/** One queued revocation SET, for inspection. */
export interface OutboxEntry {
  /** The SET's `jti`. */
  jti: string;
  grantId: string;
  userId: string;
  /** The service issuer (the SET's `aud`). */
  audience: string;
  /** Where it is POSTed; null until learned from the service's metadata. */
  endpoint: string | null;
  event: string;
  createdAt: number;
  status: OutboxStatus;
  /** When the next attempt is due (or the current lease ends); null once delivered or failed. */
  nextAttemptAt: number | null;
  attempts: number;
  lastAttemptAt: number | null;
  /** The HTTP status of the last answer, if there was one. */
  lastStatus: number | null;
  lastError: string | null;
  settledAt: number | null;
}

export interface DeliveryReport {
  /** Rows this call leased and attempted. */
  attempted: number;
  delivered: number;
  /** Rows that failed this time and are scheduled again. */
  retrying: number;
  /** Rows that failed for good (a permanent 4xx, a refused URL, no events endpoint, too old). */
  failed: number;
}

interface OutboxDeps {
  store: Store;
  clock: () => number;
  fetcher: Fetcher;
  allowLoopback: boolean;
  issuer: string;
  keyring: Keyring;
  discovery: AudienceDiscovery;
  logger: Logger;
  options: ResolvedOutboxOptions;
  metrics: ProviderMetrics;
}

/** What one `deliverOne` came to: 'skipped' when the row was not (or no longer) this worker's to send. */
export type AttemptResult = 'skipped' | 'delivered' | 'retrying' | 'failed';

type Outcome =
  | { kind: 'delivered'; status: number; endpoint: string }
  | { kind: 'retry'; status: number | null; error: string; endpoint: string | null }
  | { kind: 'failed'; status: number | null; error: string; endpoint: string | null };

const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * The durable outbox of revocation SETs (RFC 8417, pushed per RFC 8935). A row is written in the
 * same transaction that deletes the grant, so a revocation is never lost between the two. Workers
 * read due rows with `findDue` and lease each by a compare-and-set of `next_attempt_at` before
 * sending it: of several workers (or replicas) exactly one sends a row within a lease, and a worker
 * that dies mid-send leaves the row due again when its lease ends. The SET is signed at every
 * attempt with the current key (so a key rotation during a long outage never strands it), with the
 * same `jti` each time so that the receiver deduplicates; `iat` is the signing time and `toe` the
 * time the user revoked.
 */
export class Outbox {
  private readonly options: ResolvedOutboxOptions;

  constructor(private readonly deps: OutboxDeps) {
    this.options = deps.options;
  }

  /** Queues the revocation SET for a grant being deleted; call inside the deleting transaction. */
  async enqueue(tx: StoreTx, grant: GrantRow, endpoint: string | null, now: number): Promise<OutboxRow> {
    const row: OutboxRow = {
      id: randomUUID(),
      grant_id: grant.id,
      user_id: grant.user_id,
      audience: grant.audience,
      endpoint,
      event: eventSchemas.assertionRevoked,
      created_at: now,
      status: 'pending',
      next_attempt_at: now,
      attempts: 0,
      last_attempt_at: null,
      last_status: null,
      last_error: null,
      settled_at: null,
      expires_at: null,
    };
    await tx.insert(outbox, row);
    return row;
  }

  /** Queued, delivered and failed SETs (of one user, when given), oldest first. */
  async list(filter: { userId?: string } = {}): Promise<OutboxEntry[]> {
    const { store } = this.deps;
    const rows = filter.userId
      ? await store.findMany(outbox, 'user_id', filter.userId)
      : (await Promise.all((['pending', 'delivered', 'failed'] as const).map((status) => store.findMany(outbox, 'status', status)))).flat();
    return rows.sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id)).map(entryFromRow);
  }

  /** Attempts every row that is due now; resolves when each attempt has been recorded. */
  async deliverDue(): Promise<DeliveryReport> {
    const now = this.deps.clock();
    // Due means next_attempt_at ≤ now (findDue is strictly below its bound).
    const due = await this.deps.store.findDue(outbox, 'next_attempt_at', now + 1, this.options.batchSize);
    const report: DeliveryReport = { attempted: 0, delivered: 0, retrying: 0, failed: 0 };
    await Promise.all(
      due.map(async (row) => {
        const result = await this.deliverOne(row);
        if (result === 'skipped') return;
        report.attempted++;
        report[result]++;
      }),
    );
    return report;
  }

  /**
   * One attempt at a row just queued, made by `grants.delete` before it returns: leased like any other,
   * with a request timeout of at most `timeoutMs`. 'skipped' when another worker has the row.
   */
  deliverNow(row: OutboxRow, timeoutMs: number): Promise<AttemptResult> {
    return this.deliverOne(row, Math.max(1, Math.min(Math.ceil(timeoutMs), this.options.timeoutMs)));
  }

  /** One row, as it is now. */
  async get(jti: string): Promise<OutboxEntry | undefined> {
    const row = await this.deps.store.get(outbox, jti);
    return row ? entryFromRow(row) : undefined;
  }

  private async deliverOne(row: OutboxRow, timeoutMs = this.options.timeoutMs): Promise<AttemptResult> {
    const { store, clock } = this.deps;
    if (row.status !== 'pending') return 'skipped';
    const leasedAt = clock();
    const leaseUntil = leasedAt + this.options.leaseMs;
    const attempts = row.attempts + 1;
    const leased = await store.update(
      outbox,
      row.id,
      { next_attempt_at: leaseUntil, attempts, last_attempt_at: leasedAt },
      { next_attempt_at: row.next_attempt_at, status: 'pending' },
    );
    if (!leased) return 'skipped'; // another worker has it
    const result = await tracer.startActiveSpan('deliver revocation SET', { kind: SpanKind.CLIENT, attributes: { 'authmd.set.attempt': attempts } }, async (span) => {
      try {
        const settled = await this.settle(row, attempts, leaseUntil, timeoutMs);
        span.setAttribute('authmd.set.outcome', settled.result);
        if (settled.status !== null) span.setAttribute('http.response.status_code', settled.status);
        if (settled.result === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: 'revocation SET failed for good' });
        return settled.result;
      } finally {
        span.end();
      }
    });
    this.deps.metrics.delivery(result);
    return result;
  }

  /** The attempt at a leased row, and its outcome recorded (if the lease still holds); counted either way. */
  private async settle(row: OutboxRow, attempts: number, leaseUntil: number, timeoutMs: number): Promise<{ result: Exclude<AttemptResult, 'skipped'>; status: number | null }> {
    const { store, clock, logger } = this.deps;
    let outcome: Outcome;
    try {
      outcome = await this.attempt(row, timeoutMs);
    } catch (error) {
      outcome = { kind: 'retry', status: null, error: errorMessage(error), endpoint: row.endpoint };
    }

    const now = clock();
    if (outcome.kind === 'retry' && now - row.created_at >= this.options.giveUpAfterMs) {
      outcome = { ...outcome, kind: 'failed', error: `gave up after ${attempts} attempts: ${outcome.error}` };
    }
    const base = { last_status: outcome.status, endpoint: outcome.endpoint ?? row.endpoint };
    const patch: Partial<OutboxRow> =
      outcome.kind === 'retry'
        ? { ...base, next_attempt_at: now + this.backoff(attempts), last_error: outcome.error }
        : {
            ...base,
            status: outcome.kind,
            next_attempt_at: null,
            last_error: outcome.kind === 'failed' ? outcome.error : null,
            settled_at: now,
            expires_at: now + this.options.retentionMs,
          };
    const recorded = await store.update(outbox, row.id, patch, { next_attempt_at: leaseUntil, status: 'pending' });
    const fields = { jti: row.id, audience: row.audience, endpoint: base.endpoint, attempts, status: outcome.status };
    const result = { result: outcome.kind === 'retry' ? ('retrying' as const) : outcome.kind, status: outcome.status };
    if (!recorded) {
      logger.warn('revocation SET outcome not recorded: the lease ended before the attempt did', fields);
      return result;
    }
    if (outcome.kind === 'delivered') logger.info('revocation SET delivered', fields);
    else if (outcome.kind === 'failed') logger.error('revocation SET failed for good', { ...fields, error: outcome.error });
    else logger.warn('revocation SET not delivered; will retry', { ...fields, error: outcome.error, next_attempt_at: patch.next_attempt_at });
    return result;
  }

  private async attempt(row: OutboxRow, timeoutMs: number): Promise<Outcome> {
    let endpoint = row.endpoint;
    if (!endpoint) {
      let eventsEndpoint: string | null;
      try {
        eventsEndpoint = (await this.deps.discovery.resolve(row.audience)).eventsEndpoint;
      } catch (error) {
        return { kind: 'retry', status: null, error: `discovery: ${errorMessage(error)}`, endpoint: null };
      }
      if (!eventsEndpoint) return { kind: 'failed', status: null, error: `${row.audience} advertises no agent_auth.events_endpoint`, endpoint: null };
      endpoint = eventsEndpoint;
    }

    const set = await this.sign(row);
    let response;
    try {
      response = await this.deps.fetcher(endpoint, {
        method: 'POST',
        headers: { 'Content-Type': mediaTypes.secEvent, Accept: mediaTypes.json },
        body: set,
        allowLoopback: this.deps.allowLoopback,
        timeoutMs,
        maxBytes: MAX_ANSWER_BYTES,
      });
    } catch (error) {
      const failure = fetchFailure(error);
      const message = `${failure}: ${errorMessage(error)}`;
      return isPermanentFetchFailure(failure)
        ? { kind: 'failed', status: null, error: message, endpoint }
        : { kind: 'retry', status: null, error: message, endpoint };
    }
    const { status } = response;
    // RFC 8935 §2.2 acknowledges with 202; any 2xx means the receiver took it.
    if (status >= 200 && status < 300) return { kind: 'delivered', status, endpoint };
    const error = describeRefusal(status, response.body);
    // RFC 8935 §2.3: a 400 {err, description} is the receiver's final word, as is any 4xx other than
    // "try later" (408 Request Timeout, 425 Too Early, 429 Too Many Requests).
    if (status >= 400 && status < 500 && status !== 408 && status !== 425 && status !== 429) return { kind: 'failed', status, error, endpoint };
    return { kind: 'retry', status, error, endpoint };
  }

  private sign(row: OutboxRow): Promise<string> {
    const key = this.deps.keyring.active();
    const payload = {
      iss: this.deps.issuer,
      sub: row.user_id,
      aud: row.audience,
      jti: row.id,
      iat: Math.floor(this.deps.clock() / 1000),
      toe: Math.floor(row.created_at / 1000),
      events: { [row.event]: {} },
    };
    return encodeJwt(key.alg, key.privateKey, { kid: key.kid, typ: jwtTypes.secEvent }, payload);
  }

  /** Exponential backoff with ±20 % jitter, capped: 2 s, 4 s, 8 s … 10 min by default. */
  private backoff(attempts: number): number {
    const base = this.options.initialDelayMs * 2 ** Math.min(attempts - 1, 40);
    const jittered = base * (0.8 + 0.4 * this.options.random());
    return Math.round(Math.min(this.options.maxDelayMs, jittered));
  }
}

function describeRefusal(status: number, body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    const code = parsed.err ?? parsed.error;
    const text = parsed.description ?? parsed.error_description ?? parsed.message;
    if (typeof code === 'string') return `${status} ${code}${typeof text === 'string' ? `: ${text}` : ''}`.slice(0, 500);
  } catch {
    // not JSON: report the status alone
  }
  return `HTTP ${status}`;
}

export function entryFromRow(row: OutboxRow): OutboxEntry {
  return {
    jti: row.id,
    grantId: row.grant_id,
    userId: row.user_id,
    audience: row.audience,
    endpoint: row.endpoint,
    event: row.event,
    createdAt: row.created_at,
    status: row.status,
    nextAttemptAt: row.next_attempt_at,
    attempts: row.attempts,
    lastAttemptAt: row.last_attempt_at,
    lastStatus: row.last_status,
    lastError: row.last_error,
    settledAt: row.settled_at,
  };
}
