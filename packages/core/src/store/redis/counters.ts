import { createHash } from 'node:crypto';
import { StoreUnavailableError, type CounterState } from '../contract.ts';
import type { RedisConnections } from './connection.ts';

/**
 * Fixed-window counters in Redis, with the same windows as the SQL stores: the window is computed
 * from the caller's `now`, never from Redis's clock, so that every replica (and a test clock) agrees
 * with the contract. Each counter is a hash (`c` count, `r` resetAt), and a sorted set indexes the
 * counters by resetAt so that `purgeExpired(now)` finds the expired ones without a scan.
 */

// KEYS: the counter, the index. ARGV: now, the new window's resetAt, expiry (ms), and the resetAt
// below which index entries are dropped (their counters have expired by now: nobody purged them).
// One script, so concurrent increments never interleave. Numbers travel as decimal strings: Lua
// would print large ones in exponent form.
const INCREMENT = `
local current = redis.call('HGET', KEYS[1], 'r')
if current and tonumber(current) > tonumber(ARGV[1]) then
  return {redis.call('HINCRBY', KEYS[1], 'c', 1), current}
end
redis.call('HSET', KEYS[1], 'c', 1, 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return {1, ARGV[2]}
`;

// KEYS: the index, then counters it lists as expired. ARGV: now. Returns how many counters it deleted.
const PURGE = `
local now = tonumber(ARGV[1])
local deleted = 0
for i = 2, #KEYS do
  local resetAt = tonumber(redis.call('HGET', KEYS[i], 'r'))
  if resetAt == nil or resetAt <= now then
    deleted = deleted + redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], KEYS[i])
  end
end
return deleted
`;

// KEYS: the counter, the index. Returns 1 when the counter existed. One script, so that an increment
// reopening the counter in between cannot lose its index entry to the ZREM.
const CLEAR = `
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return existed
`;

const PURGE_BATCH = 500;
/**
 * Redis expires a counter on its own clock, which is not the callers': the expiry is only a backstop
 * for counters nobody purges, so it outlasts the window by a margin that absorbs clocks that differ.
 */
const EXPIRY_MARGIN_MS = 60_000;

export interface RedisCounters {
  incrementWithin(key: string, windowMs: number, now: number): Promise<CounterState>;
  peekCounter(key: string, now: number): Promise<CounterState | undefined>;
  clearCounter(key: string): Promise<boolean>;
  /** Deletes the counters whose window ended at or before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export function redisCounters(redis: RedisConnections, prefix: string): RedisCounters {
  const index = `${prefix}counters`;
  const keyOf = (key: string) => `${prefix}counter:${key}`;
  const script = scriptRunner(redis);

  return {
    async incrementWithin(key, windowMs, now) {
      const reply = (await script(INCREMENT, [keyOf(key), index], [String(now), String(now + windowMs), String(windowMs + EXPIRY_MARGIN_MS), String(now - EXPIRY_MARGIN_MS)])) as [unknown, unknown];
      return { count: Number(reply[0]), resetAt: Number(reply[1]) };
    },

    async peekCounter(key, now) {
      const [count, resetAt] = (await redis.command(['HMGET', keyOf(key), 'c', 'r'])) as [string | null, string | null];
      if (count === null || resetAt === null || Number(resetAt) <= now) return undefined;
      return { count: Number(count), resetAt: Number(resetAt) };
    },

    async clearCounter(key) {
      return Number(await script(CLEAR, [keyOf(key), index], [])) === 1;
    },

    async purgeExpired(now) {
      let deleted = 0;
      for (;;) {
        const due = (await redis.command(['ZRANGEBYSCORE', index, '-inf', String(now), 'LIMIT', '0', String(PURGE_BATCH)])) as string[];
        if (due.length === 0) return deleted;
        deleted += Number(await script(PURGE, [index, ...due], [String(now)]));
        if (due.length < PURGE_BATCH) return deleted;
      }
    },
  };
}

/** EVALSHA, and EVAL once when Redis does not have the script yet (a restart, another database). */
function scriptRunner(redis: RedisConnections) {
  const shas = new Map<string, string>();
  return async (source: string, keys: string[], args: string[]): Promise<unknown> => {
    let sha = shas.get(source);
    if (!sha) shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
    const call = [String(keys.length), ...keys, ...args];
    try {
      return await redis.command(['EVALSHA', sha, ...call]);
    } catch (error) {
      if (error instanceof StoreUnavailableError || !(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.command(['EVAL', source, ...call]);
    }
  };
}
