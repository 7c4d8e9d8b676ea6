import { createMemoryStore, type Store } from '@authmd/core/store';

/** The store operations a request asks for outside a transaction's own handle: the transactions and the writes. */
const WRITES = new Set(['transaction', 'insert', 'append', 'insertIfAbsent', 'update', 'updateWhere', 'delete', 'consumeOne', 'incrementTiers']);

/**
 * A memory store whose transactions and writes outside them go through `around` (by name) before
 * they run, so that a test can record them or make them fail. Writes inside a transaction go through
 * its own handle and are not seen.
 */
export function interceptedStore(around: (operation: string, proceed: () => unknown) => unknown): Store {
  return new Proxy(createMemoryStore(), {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !WRITES.has(property) || typeof value !== 'function') return value;
      return (...args: unknown[]) => around(property, () => (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
