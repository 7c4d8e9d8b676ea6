import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { InvalidationListener, Subscription } from '../contract.ts';
import type { Runner } from './sql.ts';

const CHANNEL = 'authmd_invalidation';
/** NOTIFY payloads are limited to 8000 bytes; the envelope takes some. */
const MAX_MESSAGE_BYTES = 7000;
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5000;

interface Envelope {
  /** The sending store. */
  s: string;
  /** Its sequence number, to recognise its own message when it comes back. */
  n: number;
  t?: string;
  m?: string;
  /** In an acknowledgement: the store whose message number `n` was received. */
  to?: string;
}

interface Pending {
  echoed: boolean;
  peers: number;
  acks: Set<string>;
  resolve(): void;
}

/**
 * LISTEN/NOTIFY on one channel, with a LISTEN connection that comes back after it is lost. A
 * connection sends nothing while it only listens, so a database that stops answering without closing
 * it would go unnoticed (TCP keepalive takes hours): a heartbeat query finds it out.
 */
export function createInvalidation(
  listenPool: pg.Pool,
  run: Runner,
  { echoTimeoutMs, heartbeatMs, isClosed }: { echoTimeoutMs: number; heartbeatMs: number; isClosed: () => boolean },
) {
  const sender = randomUUID();
  const topics = new Map<string, Set<InvalidationListener>>();
  const pending = new Map<number, Pending>();
  const settle = (p: Pending | undefined) => {
    if (p && p.echoed && p.acks.size >= p.peers) p.resolve();
  };
  const notify = (envelope: Envelope) => run('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(envelope)]);
  let seq = 0;
  let client: pg.PoolClient | undefined;
  let connecting = false;
  let retryMs = RECONNECT_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let release: (() => void) | undefined;

  const call = (listener: InvalidationListener, message: string | undefined) => {
    try {
      listener(message);
    } catch {
      // A listener's failure is its own; the others still hear the message.
    }
  };

  function deliver(payload: string | undefined): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload ?? '') as Envelope;
    } catch {
      return; // not ours
    }
    if (typeof envelope !== 'object' || envelope === null || typeof envelope.s !== 'string') return;
    if (envelope.to !== undefined) {
      const p = envelope.to === sender ? pending.get(envelope.n) : undefined;
      p?.acks.add(envelope.s);
      return settle(p);
    }
    if (typeof envelope.t !== 'string' || typeof envelope.m !== 'string') return;
    // Listeners run synchronously (they clear caches, or start a re-read), then the sender hears back.
    for (const listener of [...(topics.get(envelope.t) ?? [])]) call(listener, envelope.m);
    if (envelope.s === sender) {
      const p = pending.get(envelope.n);
      if (p) p.echoed = true;
      settle(p);
    } else if (!isClosed()) {
      notify({ s: sender, n: envelope.n, to: envelope.s }).catch(() => {}); // the sender stops waiting at its bound anyway
    }
  }

  /** The other LISTEN sessions on this database (0 when they cannot be seen, e.g. without pg_read_all_stats). */
  async function peers(): Promise<number> {
    try {
      const { rows } = await run(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND query = $1`,
        [`LISTEN ${CHANNEL}`],
      );
      return Math.max(0, Number(rows[0]?.n ?? 0) - 1);
    } catch {
      return 0;
    }
  }

  function scheduleReconnect(): void {
    if (isClosed() || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, retryMs);
    retryTimer.unref();
    retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
  }

  async function connect(): Promise<void> {
    if (isClosed() || client || connecting || topics.size === 0) return;
    connecting = true;
    let candidate: pg.PoolClient;
    try {
      candidate = await listenPool.connect();
    } catch {
      connecting = false;
      scheduleReconnect();
      return;
    }
    let released = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const drop = (error?: Error) => {
      if (released) return;
      released = true;
      clearInterval(heartbeat);
      candidate.removeListener('notification', onNotification);
      if (client === candidate) client = undefined;
      release = undefined;
      // Destroyed, never returned to a pool: a connection that LISTENs must not serve queries.
      candidate.release(error ?? true);
    };
    const onNotification = (n: pg.Notification) => {
      if (n.channel === CHANNEL) deliver(n.payload);
    };
    const onLost = () => {
      drop(new Error('the LISTEN connection was lost'));
      scheduleReconnect();
    };
    candidate.on('error', onLost);
    candidate.on('end', onLost);
    candidate.on('notification', onNotification);
    try {
      await candidate.query(`LISTEN ${CHANNEL}`);
    } catch {
      connecting = false;
      onLost();
      return;
    }
    connecting = false;
    if (released) return;
    if (isClosed()) return drop();
    client = candidate;
    release = () => drop();
    retryMs = RECONNECT_MIN_MS;
    if (heartbeatMs > 0) {
      let answered = true;
      heartbeat = setInterval(() => {
        if (!answered) return; // the previous one is still within its bound
        answered = false;
        const silent = setTimeout(onLost, heartbeatMs);
        silent.unref();
        // LISTEN again, not SELECT 1: `peers()` finds the listening sessions by their last statement.
        candidate.query(`LISTEN ${CHANNEL}`).then(
          () => {
            clearTimeout(silent);
            answered = true;
          },
          () => {
            clearTimeout(silent);
            onLost();
          },
        );
      }, heartbeatMs);
      heartbeat.unref();
    }
    // Whatever was broadcast while no connection listened is lost: every cache is stale.
    for (const listeners of [...topics.values()]) for (const listener of [...listeners]) call(listener, undefined);
  }

  return {
    async broadcast(topic: string, message: string): Promise<void> {
      const n = ++seq;
      const envelope: Envelope = { s: sender, n, t: topic, m: message };
      if (Buffer.byteLength(JSON.stringify(envelope)) > MAX_MESSAGE_BYTES) throw new RangeError(`an invalidation message is limited to ${MAX_MESSAGE_BYTES} bytes`);
      let timer: NodeJS.Timeout | undefined;
      // Without a live LISTEN connection there is nothing to wait for: the message is only sent.
      const others = client ? await peers() : 0;
      const delivered = client
        ? new Promise<void>((resolve) => {
            pending.set(n, { echoed: false, peers: others, acks: new Set(), resolve });
            timer = setTimeout(resolve, echoTimeoutMs);
          })
        : undefined;
      try {
        await notify(envelope);
        await delivered;
      } finally {
        clearTimeout(timer);
        pending.delete(n);
      }
    },

    subscribe(topic: string, listener: InvalidationListener): Subscription {
      let listeners = topics.get(topic);
      if (!listeners) topics.set(topic, (listeners = new Set()));
      // Each subscription is its own entry, even for a listener given twice.
      const entry: InvalidationListener = (message) => listener(message);
      listeners.add(entry);
      void connect();
      return {
        get live() {
          return client !== undefined;
        },
        close() {
          listeners.delete(entry);
          if (listeners.size === 0 && topics.get(topic) === listeners) topics.delete(topic);
        },
      };
    },

    close(): void {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      release?.();
      for (const p of pending.values()) p.resolve();
      pending.clear();
    },
  };
}

