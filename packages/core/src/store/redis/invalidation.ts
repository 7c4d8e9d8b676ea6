import { randomUUID } from 'node:crypto';
import type { InvalidationListener, Subscription } from '../contract.ts';
import type { AnyRedisClient, RedisConnections } from './connection.ts';

/**
 * The store's invalidation channel on Redis pub/sub, with PostgreSQL's semantics (postgres-store.ts):
 * a message reaches every subscribing store, this one included; each other store acknowledges it
 * once its listeners ran; `broadcast` resolves when its own message came back and every other
 * receiver acknowledged, or after `echoTimeoutMs`, and rejects when the message could not be sent.
 *
 * PUBLISH answers how many connections received the message, so, unlike LISTEN/NOTIFY, the sender
 * knows exactly how many acknowledgements to wait for. Each broadcast names its own reply channel;
 * one pattern subscription per store receives the replies to all of its broadcasts.
 */

interface Envelope {
  /** The sending store. */
  s: string;
  t: string;
  m: string;
  /** Where receivers acknowledge this message. */
  r: string;
}

interface Pending {
  echoed: boolean;
  /** How many other stores received the message; unknown until PUBLISH answers. */
  others: number;
  acks: Set<string>;
  resolve(): void;
}

export interface RedisInvalidation {
  broadcast(topic: string, message: string): Promise<void>;
  subscribe(topic: string, listener: InvalidationListener): Subscription;
  close(): void;
}

export function redisInvalidation(redis: RedisConnections, prefix: string, echoTimeoutMs: number): RedisInvalidation {
  const sender = randomUUID();
  const channel = `${prefix}invalidation`;
  const replyPrefix = `${prefix}ack:${sender}:`;
  let subscriber: AnyRedisClient | undefined;
  const topics = new Map<string, Set<InvalidationListener>>();
  const pending = new Map<number, Pending>();
  let seq = 0;
  let started = false;
  let subscribed = false;
  let closed = false;

  const settle = (p: Pending | undefined) => {
    if (p && p.echoed && p.acks.size >= p.others) p.resolve();
  };

  const call = (listener: InvalidationListener, message: string | undefined) => {
    try {
      listener(message);
    } catch {
      // A listener's failure is its own; the others still hear the message.
    }
  };

  const everyListener = (message: string | undefined) => {
    for (const listeners of [...topics.values()]) for (const listener of [...listeners]) call(listener, message);
  };

  function deliver(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return; // not ours
    }
    // Anyone who can publish on the channel can send anything: a malformed message is dropped here
    // (a throw would make the client drop the subscription, and every cache with it).
    if (typeof envelope !== 'object' || envelope === null) return;
    if (typeof envelope.s !== 'string' || typeof envelope.t !== 'string' || typeof envelope.m !== 'string' || typeof envelope.r !== 'string') return;
    // Listeners run synchronously (they clear caches, or start a re-read), then the sender hears back.
    for (const listener of [...(topics.get(envelope.t) ?? [])]) call(listener, envelope.m);
    if (envelope.s === sender) {
      const p = pending.get(Number(envelope.r.slice(replyPrefix.length)));
      if (p) p.echoed = true;
      settle(p);
    } else if (!closed) {
      redis.command(['PUBLISH', envelope.r, sender]).catch(() => {}); // the sender stops waiting at its bound anyway
    }
  }

  function acknowledged(from: string, replyChannel: string): void {
    const p = pending.get(Number(replyChannel.slice(replyPrefix.length)));
    p?.acks.add(from);
    settle(p);
  }

  /** Connects the subscriber on first use; it reconnects by itself and subscribes again before it is ready. */
  function start(): void {
    if (started || closed) return;
    started = true;
    const subscriptions = redis.subscriber().then(async (connection) => {
      if (closed) throw new Error('the store is closed');
      subscriber = connection;
      connection.on('ready', () => {
        // Whatever was broadcast while the connection was down is lost: every cache is stale.
        if (subscribed) everyListener(undefined);
      });
      if (!connection.isOpen) await connection.connect();
      await Promise.all([connection.subscribe(channel, deliver), connection.pSubscribe(`${escapeGlob(replyPrefix)}*`, acknowledged)]);
    });
    subscriptions.then(
      () => {
        if (closed) return;
        subscribed = true;
        everyListener(undefined);
      },
      () => {}, // only when closed while connecting
    );
  }

  const live = () => subscribed && subscriber?.isReady === true;

  return {
    async broadcast(topic, message) {
      const n = ++seq;
      const envelope: Envelope = { s: sender, t: topic, m: message, r: `${replyPrefix}${n}` };
      // Without a live subscription there is nothing to wait for: the message is only sent.
      if (!live()) {
        await redis.command(['PUBLISH', channel, JSON.stringify(envelope)]);
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const delivered = new Promise<void>((resolve) => {
        pending.set(n, { echoed: false, others: Number.POSITIVE_INFINITY, acks: new Set(), resolve });
        timer = setTimeout(resolve, echoTimeoutMs);
      });
      try {
        const receivers = Number(await redis.command(['PUBLISH', channel, JSON.stringify(envelope)]));
        const p = pending.get(n);
        if (p) {
          // This store's own connection is one of the receivers (when it is not, the echo never comes and the bound ends the wait).
          p.others = receivers - 1;
          settle(p);
        }
        await delivered;
      } finally {
        clearTimeout(timer);
        pending.delete(n);
      }
    },

    subscribe(topic, listener) {
      let listeners = topics.get(topic);
      if (!listeners) topics.set(topic, (listeners = new Set()));
      // Each subscription is its own entry, even for a listener given twice.
      const entry: InvalidationListener = (message) => listener(message);
      listeners.add(entry);
      start();
      return {
        get live() {
          return live();
        },
        close() {
          listeners.delete(entry);
          if (listeners.size === 0 && topics.get(topic) === listeners) topics.delete(topic);
        },
      };
    },

    close() {
      closed = true;
      subscribed = false;
      for (const p of pending.values()) p.resolve();
      pending.clear();
    },
  };
}

/** A literal string as a PSUBSCRIBE pattern: a prefix may hold glob characters. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (ch) => `\\${ch}`);
}
