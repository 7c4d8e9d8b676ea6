import type { ColumnKind, CounterState, CounterTier, StoreOps, TableSpec } from './contract.ts';

/** Pieces every backend shares: the transaction lock and the checks on table specs. */

export const DEFAULT_LIMIT = 1000;
const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * A FIFO async lock; release hands it straight to the next waiter. A waiter gives up after
 * `timeoutMs`: the only way to wait that long is a transaction that awaits the store itself instead
 * of its handle (a deadlock) or one that hangs, and an error says so where a hang would not.
 */
export class Mutex {
  locked = false;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly timeoutMs: number) {}

  acquire(): Promise<void> {
    if (!this.locked) {
      this.locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(lockTimeout(this.timeoutMs));
      }, this.timeoutMs);
      timer.unref();
      this.waiters.push(waiter);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.locked = false;
  }

  async run<T>(f: () => T): Promise<T> {
    await this.acquire();
    try {
      return f();
    } finally {
      this.release();
    }
  }
}

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

function lockTimeout(ms: number): Error {
  return new Error(
    `waited ${ms} ms for the store's transaction lock: a transaction is stuck, or code inside a transaction used the store instead of the transaction handle`,
  );
}

/** Runs `f` now and turns a throw into a rejected promise. */
export function attempt<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Names go into SQL, so they are restricted to a safe alphabet; indexed columns must be declared. */
export function validateSpec(spec: TableSpec<any>, reserved: readonly string[] = []): void {
  const names = [spec.name, ...Object.keys(spec.columns)];
  const bad = names.find((name) => !NAME.test(name));
  if (bad !== undefined) throw new Error(`invalid table or column name: ${JSON.stringify(bad)}`);
  if (reserved.includes(spec.name)) throw new Error(`${spec.name} is reserved`);
  for (const column of [spec.key, ...(spec.unique ?? []), ...(spec.indexed ?? []), ...(spec.expiresAt ? [spec.expiresAt] : [])]) {
    if (!Object.hasOwn(spec.columns, column)) throw new Error(`${spec.name}.${column} is not a declared column`);
  }
}

export function kindOf(spec: TableSpec<any>, column: string): ColumnKind {
  const kind = Object.hasOwn(spec.columns, column) ? spec.columns[column] : undefined;
  if (!kind) throw new Error(`${spec.name} has no column ${column}`);
  return kind;
}

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`invalid limit: ${limit}`);
}

/** `incrementTiers` as one `incrementWithin` after another, for backends where each is cheap (or the only way). */
export async function incrementTiersInTurn(ops: Pick<StoreOps, 'incrementWithin'>, tiers: readonly CounterTier[], now: number): Promise<CounterState[]> {
  const states: CounterState[] = [];
  for (const tier of tiers) {
    const state = await ops.incrementWithin(tier.key, tier.windowMs, now);
    states.push(state);
    if (state.count > tier.limit) break;
  }
  return states;
}
