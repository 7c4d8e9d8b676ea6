import type { Store, StoreOps, StoreTx } from '../contract.ts';
import { incrementTiersInTurn } from '../shared.ts';
import { openRedis, type AnyRedisClient } from './connection.ts';
import { redisCounters, type RedisCounters } from './counters.ts';
import { redisInvalidation } from './invalidation.ts';

export type WithRedisOptions = ({ /** redis://[user:password@]host:port[/db] */ url: string } | { /** A client the caller configured and closes; withRedis opens a duplicate for pub/sub. */ client: AnyRedisClient }) & {
  /** Prepended to every key and channel, so that several services (or test runs) share one Redis (default `authmd:`). */
  prefix?: string;
  /** How long a command waits for a connection and for its reply before failing with StoreUnavailableError (default 2 s). */
  commandTimeoutMs?: number;
  /**
   * How long `broadcast` waits at most for its message to come back and to be acknowledged by every
   * other subscribing store (default 200 ms, as PostgreSQL's `echoTimeoutMs`).
   */
  echoTimeoutMs?: number;
};

/**
 * `store`, with its rate-limit counters and its invalidation channel in Redis: the counter operations
 * (`incrementWithin`, `incrementTiers`, `peekCounter`, `clearCounter`, on the store and on transaction
 * handles) and `broadcast`/`subscribe` go to Redis, everything else to `store`. Every replica must use
 * the same Redis and prefix. `close()` closes the Redis connections withRedis opened, then `store`.
 */
export function withRedis(store: Store, options: WithRedisOptions): Store {
  const prefix = options.prefix ?? 'authmd:';
  const redis = openRedis('url' in options ? { url: options.url } : { client: options.client }, { commandTimeoutMs: options.commandTimeoutMs ?? 2000 });
  const invalidation = redisInvalidation(redis, prefix, options.echoTimeoutMs ?? 200);
  let closed = false;
  const checkOpen = () => {
    if (closed) throw new Error('the store is closed');
  };
  const inRedis = redisCounters(redis, prefix);
  const counters: RedisCounters = {
    incrementWithin: async (key, windowMs, now) => {
      checkOpen();
      return inRedis.incrementWithin(key, windowMs, now);
    },
    peekCounter: async (key, now) => {
      checkOpen();
      return inRedis.peekCounter(key, now);
    },
    clearCounter: async (key) => {
      checkOpen();
      return inRedis.clearCounter(key);
    },
    purgeExpired: (now) => inRedis.purgeExpired(now),
  };

  return {
    kind: `${store.kind}+redis`,
    ...delegateOps(store, counters),
    migrate: (tables) => store.migrate(tables),
    transaction: (fn, options) => store.transaction((tx) => fn(routeCounters(tx, counters)), options),
    purgeExpired: async (now) => (await store.purgeExpired(now)) + (await counters.purgeExpired(now)),
    // Without Redis, registrations and sign-ins cannot count their limits: not ready.
    ping: async () => {
      checkOpen();
      await store.ping?.();
      await redis.command(['PING']);
    },
    broadcast: async (topic, message) => {
      checkOpen();
      return invalidation.broadcast(topic, message);
    },
    subscribe: (topic, listener) => {
      checkOpen();
      return invalidation.subscribe(topic, listener);
    },
    async close() {
      if (closed) return;
      closed = true;
      invalidation.close();
      try {
        await redis.close();
      } finally {
        await store.close();
      }
    },
  };
}

/** The data operations of `ops`, with counters in Redis. Explicit, because handles may keep their methods on a prototype. */
function delegateOps(ops: StoreOps, counters: RedisCounters): StoreOps {
  return {
    get: (t, key, options) => ops.get(t, key, options),
    findOne: (t, column, value) => ops.findOne(t, column, value),
    findMany: (t, column, value, limit) => ops.findMany(t, column, value, limit),
    insert: (t, row) => ops.insert(t, row),
    append: (t, row) => ops.append(t, row),
    insertIfAbsent: (t, row) => ops.insertIfAbsent(t, row),
    update: (t, key, patch, where) => ops.update(t, key, patch, where),
    updateWhere: (t, column, value, patch, where) => ops.updateWhere(t, column, value, patch, where),
    consumeOne: (t, key, where) => ops.consumeOne(t, key, where),
    takeDue: (t, column, now, limit) => ops.takeDue(t, column, now, limit),
    findDue: (t, column, now, limit) => ops.findDue(t, column, now, limit),
    delete: (t, key) => ops.delete(t, key),
    page: (t, query) => ops.page(t, query),
    count: (t, where) => ops.count(t, where),
    // Outside the database transaction, like the SQL stores' counters: a rollback keeps the increment.
    incrementWithin: (key, windowMs, now) => counters.incrementWithin(key, windowMs, now),
    // One script call per tier: Redis answers each in a few tens of microseconds.
    incrementTiers: (tiers, now) => incrementTiersInTurn(counters, tiers, now),
    peekCounter: (key, now) => counters.peekCounter(key, now),
    clearCounter: (key) => counters.clearCounter(key),
  };
}

function routeCounters(tx: StoreTx, counters: RedisCounters): StoreTx {
  return {
    ...delegateOps(tx, counters),
    transaction: (fn) => tx.transaction((inner) => fn(routeCounters(inner, counters))),
  };
}
