import type { CounterState, CounterTier, Row } from '../contract.ts';
import { encodeKey } from './encoding.ts';
import type { Runner } from './sql.ts';

/** The table of rate-limit counters, which the store creates itself. */
export const COUNTERS = 'authmd_counters';

/** Calls of `incrementTiers` per counter batch. */
export const COUNTER_BATCH = 512;

/** One call of `incrementTiers` (`incrementWithin` is one tier without a limit). */
export interface TierCall {
  tiers: readonly CounterTier[];
  now: number;
}

/**
 * Adds `k` to each counter, or starts it again at `k` when its window ended by its `now`. Keys go in
 * sorted, so that two such statements, from two replicas, lock their rows in one order. Each key's
 * `now` comes as one JSON object ($4), looked up by key in the conflict branch: a subquery over the
 * keys there made a batch quadratic (512 keys: 33 ms against 10).
 */
const INCREMENT_BY_SQL = `WITH v (key, k, reset_at) AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]))
  INSERT INTO ${COUNTERS} AS c (key, count, reset_at) SELECT key, k, reset_at FROM v ORDER BY key
  ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.reset_at <= ($4::jsonb ->> EXCLUDED.key)::bigint THEN EXCLUDED.count ELSE c.count + EXCLUDED.count END,
    reset_at = CASE WHEN c.reset_at <= ($4::jsonb ->> EXCLUDED.key)::bigint THEN EXCLUDED.reset_at ELSE c.reset_at END
  RETURNING key, count, reset_at`;

/**
 * The tiered increments of several calls, one statement per tier: tier i of every call still
 * counting (its tier i-1 within its limit), each counter once, by the number of calls naming it.
 * The calls naming one counter get consecutive counts, in their order. A counter counts them at the
 * latest of their `now`s: calls of one batch arrived within a few milliseconds of each other.
 */
export async function incrementTierCalls(calls: readonly TierCall[], run: Runner): Promise<CounterState[][]> {
  const states: CounterState[][] = calls.map(() => []);
  for (let tier = 0; ; tier++) {
    const counters = new Map<string, { now: number; resetAt: number; calls: number[] }>();
    calls.forEach((call, i) => {
      const current = call.tiers[tier];
      if (!current || (tier > 0 && states[i]![tier - 1]!.count > call.tiers[tier - 1]!.limit)) return;
      const key = encodeKey(current.key) as string;
      const counter = counters.get(key);
      if (!counter) counters.set(key, { now: call.now, resetAt: call.now + current.windowMs, calls: [i] });
      else {
        counter.calls.push(i);
        if (call.now > counter.now) Object.assign(counter, { now: call.now, resetAt: call.now + current.windowMs });
      }
    });
    if (counters.size === 0) return states;
    const keys = [...counters.keys()];
    const { rows } = await run(INCREMENT_BY_SQL, [
      keys,
      keys.map((key) => counters.get(key)!.calls.length),
      keys.map((key) => counters.get(key)!.resetAt),
      // fromEntries defines properties: a key named "__proto__" stays a key.
      JSON.stringify(Object.fromEntries(keys.map((key) => [key, counters.get(key)!.now]))),
    ]);
    for (const row of rows) {
      const counter = counters.get(row.key as string)!;
      const { count, resetAt } = counterState(row);
      counter.calls.forEach((i, j) => states[i]!.push({ count: count - counter.calls.length + 1 + j, resetAt }));
    }
  }
}

export function counterState(row: Row): CounterState {
  return { count: Number(row.count), resetAt: Number(row.reset_at) };
}

