import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DuplicateKeyError, table, UnindexedLookupError, type JsonValue, type PageQuery, type Store, type Where } from './contract.ts';

/**
 * The Store contract as tests: every backend runs this suite. It relies on the contract only, so a
 * new backend passes `open` and nothing else. Exported as `@authmd/core/store/testing` (and, the same
 * module, `@authmd/service/store/testing`) for backends written outside this repository; it imports
 * vitest, so run it from a vitest test file:
 *
 *   import { describeStoreContract } from '@authmd/core/store/testing';
 *   describeStoreContract('mine', async () => ({ store: createMyStore(), cleanup: async () => {} }));
 */

type Item = {
  id: string;
  name: string | null;
  count: number | null;
  active: boolean | null;
  data: JsonValue | null;
  hash: string | null;
  owner: string | null;
  state: string | null;
  expires_at: number | null;
  note: string | null;
};

const items = table<Item>({
  name: 'suite_items',
  key: 'id',
  columns: {
    id: 'text',
    name: 'text',
    count: 'integer',
    active: 'boolean',
    data: 'json',
    hash: 'text',
    owner: 'text',
    state: 'text',
    expires_at: 'integer',
    note: 'text',
  },
  unique: ['hash'],
  indexed: ['owner', 'count'],
  expiresAt: 'expires_at',
});

type EvolvingV1 = { id: string; a: string | null };
type EvolvingV2 = EvolvingV1 & { b: string | null; c: JsonValue | null; flag: boolean | null };
const evolvingV1 = table<EvolvingV1>({ name: 'suite_evolving', key: 'id', columns: { id: 'text', a: 'text' } });
const evolvingV2 = table<EvolvingV2>({
  name: 'suite_evolving',
  key: 'id',
  columns: { id: 'text', a: 'text', b: 'text', c: 'json', flag: 'boolean' },
  indexed: ['b'],
});

/** V2 with ordered indexes declared after the table already held rows. */
const evolvingV3 = table<EvolvingV2>({ ...evolvingV2, ordered: [{ by: 'a' }, { by: 'a', eq: 'b' }] });

type Entry = { id: string; created_at: number | null; owner: string | null; state: string | null; label: string | null; note: string | null };
const entries = table<Entry>({
  name: 'suite_entries',
  key: 'id',
  columns: { id: 'text', created_at: 'integer', owner: 'text', state: 'text', label: 'text', note: 'text' },
  unique: ['label'],
  indexed: ['state'],
  ordered: [{ by: 'created_at' }, { by: 'created_at', eq: 'owner' }, { by: 'label' }],
});

const entry = (id: string, created_at: number | null, fields: Partial<Entry> = {}): Entry => ({
  id,
  created_at,
  owner: null,
  state: null,
  label: null,
  note: null,
  ...fields,
});

/** Newest first (created_at desc, id desc): e09, e08, e07, e06, e05, e04, e03, e02, e01, e11; e10 has no created_at. Ties at 400 and 200. */
const timeline: Entry[] = [
  entry('e04', 200, { owner: 'o1', state: 'open' }),
  entry('e10', null, { owner: 'o1', state: 'open' }),
  entry('e01', 100, { owner: 'o1', label: 'delta', note: 'n' }),
  entry('e08', 500, { owner: 'o2', label: 'bravo' }),
  entry('e02', 200, { owner: 'o2', label: 'alpha', state: 'open' }),
  entry('e11', 50, { owner: 'o1' }),
  entry('e06', 400, { owner: 'o1', state: 'done' }),
  entry('e09', 600, { owner: 'o1' }),
  entry('e03', 200, { owner: 'o1', note: 'n' }),
  entry('e05', 300, { owner: 'o2', label: 'charlie' }),
  entry('e07', 400, { owner: 'o1' }),
  entry('e12', 700, { state: 'open' }),
];

const inOrder = (rows: { id: string }[]): string[] => rows.map((row) => row.id);
const cursorOf = (row: Entry) => ({ value: row.created_at!, key: row.id });

const item = (id: string, fields: Partial<Item> = {}): Item => ({
  id,
  name: null,
  count: null,
  active: null,
  data: null,
  hash: null,
  owner: null,
  state: null,
  expires_at: null,
  note: null,
  ...fields,
});

const ids = (rows: { id: string }[]): string[] => rows.map((row) => row.id).sort();
const tick = (): Promise<void> => new Promise((done) => setImmediate(done));

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export interface OpenedStore {
  store: Store;
  /** Opens a new store on the same data; the suite closes `store` before calling it. */
  reopen?: () => Promise<Store>;
  cleanup?: () => Promise<void>;
}

/** `persistent`: the backend keeps data across close and reopen (`open` then provides `reopen`). */
export function describeStoreContract(name: string, open: () => Promise<OpenedStore>, capabilities: { persistent?: boolean } = {}): void {
  describe(`Store contract: ${name}`, () => {
    let opened: OpenedStore;
    let store: Store;

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
      await store.migrate([items]);
    });

    afterEach(async () => {
      await store.close();
      await opened.cleanup?.();
    });

    describe('reads and writes', () => {
      it('round-trips every column kind, with every declared column present', async () => {
        const full = item('a', {
          name: 'Alice',
          count: 1_700_000_000_123,
          active: true,
          data: { scopes: ['read', 'write'], nested: { deep: [1, { x: null }], off: false }, ratio: 1.5 },
          hash: 'h-a',
          owner: 'o1',
          state: 'open',
          expires_at: 1_700_000_000_000,
          note: 'n',
        });
        const falsy = item('b', { active: false, count: 0, name: '', data: [] });
        const array = item('c', { data: [1, 'two', { three: [3] }, null] });
        const empty = item('d');
        for (const row of [full, falsy, array, empty]) await store.insert(items, row);

        for (const row of [full, falsy, array, empty]) {
          const got = await store.get(items, row.id);
          expect(got).toStrictEqual(row);
          expect(Object.keys(got!).sort()).toEqual(Object.keys(items.columns).sort());
        }
        expect((await store.get(items, 'b'))!.active).toBe(false);
        expect((await store.get(items, 'd'))!.active).toBeNull();
      });

      it('stores any string, U+0000 and U+FFFF included, in keys, text, JSON and counter keys, and finds it exactly', async () => {
        // Callers build keys like `id-jag\0{iss}\0{jti}` and store claims a hostile token chose.
        const odd = 'a\u0000b\uFFFF0c\uFFFF\u0000\\u0000';
        const row = item(`k\u0000${odd}`, { name: odd, hash: `h\u0000${odd}`, owner: odd, data: { [odd]: [odd, { v: '\u0000' }] } });
        await store.insert(items, row);
        // Neighbours that an escaping scheme could confuse with it.
        await store.insert(items, item('k\u0000a\u0000b\uFFFF\u00000c', { hash: 'h\uFFFF0', owner: 'a\uFFFF0b' }));
        expect(await store.get(items, row.id)).toStrictEqual(row);
        expect((await store.findOne(items, 'hash', row.hash!))?.id).toBe(row.id);
        expect(await store.findOne(items, 'hash', 'h\u0000')).toBeUndefined();
        expect(ids(await store.findMany(items, 'owner', odd))).toEqual([row.id]);
        expect(await store.insertIfAbsent(items, item(row.id))).toBe(false);
        expect(await store.update(items, row.id, { note: odd }, { state: null })).toBe(true);
        expect((await store.get(items, row.id))?.note).toBe(odd);
        expect((await store.consumeOne(items, row.id))?.name).toBe(odd);
        expect(await store.get(items, 'k\u0000a\u0000b\uFFFF\u00000c')).toMatchObject({ hash: 'h\uFFFF0', owner: 'a\uFFFF0b' });
        expect((await store.incrementWithin(`c\u0000${odd}`, 60_000, 1_000)).count).toBe(1);
        expect((await store.incrementWithin(`c\u0000${odd}`, 60_000, 1_000)).count).toBe(2);
        expect((await store.incrementWithin('c\u0000a', 60_000, 1_000)).count).toBe(1);
        // A hostile "__proto__" key next to an escaped string stays an own key, and changes no prototype.
        const data = JSON.parse(`{"__proto__":{"isAdmin":true},"sub":"x\\u0000y"}`) as JsonValue;
        await store.insert(items, item('proto', { data }));
        const stored = (await store.get(items, 'proto'))!.data as Record<string, unknown>;
        expect(Object.keys(stored).sort()).toEqual(['__proto__', 'sub']);
        expect((stored as { isAdmin?: unknown }).isAdmin).toBeUndefined();
        expect(stored.sub).toBe('x\u0000y');
        expect(Object.getOwnPropertyDescriptor(stored, '__proto__')?.value).toStrictEqual({ isAdmin: true });
      });

      it('returns undefined or nothing for missing rows', async () => {
        expect(await store.get(items, 'missing')).toBeUndefined();
        expect(await store.findOne(items, 'hash', 'missing')).toBeUndefined();
        expect(await store.findMany(items, 'owner', 'missing')).toEqual([]);
        expect(await store.delete(items, 'missing')).toBe(false);
      });

      it('finds one row by key and by unique column', async () => {
        await store.insert(items, item('a', { hash: 'h-a', name: 'A' }));
        await store.insert(items, item('b', { hash: 'h-b', name: 'B' }));
        expect((await store.findOne(items, 'id', 'b'))?.name).toBe('B');
        expect((await store.findOne(items, 'hash', 'h-a'))?.name).toBe('A');
        expect(await store.findOne(items, 'hash', 'h-c')).toBeUndefined();
      });

      it('finds many rows by indexed column and respects the limit', async () => {
        for (let i = 0; i < 5; i++) await store.insert(items, item(`o1-${i}`, { owner: 'o1' }));
        for (let i = 0; i < 2; i++) await store.insert(items, item(`o2-${i}`, { owner: 'o2' }));
        expect(ids(await store.findMany(items, 'owner', 'o1'))).toEqual(['o1-0', 'o1-1', 'o1-2', 'o1-3', 'o1-4']);
        expect(ids(await store.findMany(items, 'owner', 'o2'))).toEqual(['o2-0', 'o2-1']);
        const limited = await store.findMany(items, 'owner', 'o1', 3);
        expect(limited).toHaveLength(3);
        expect(new Set(ids(limited)).size).toBe(3);
        for (const row of limited) expect(row.owner).toBe('o1');
      });

      it('deletes a row and its index entries', async () => {
        await store.insert(items, item('a', { hash: 'h', owner: 'o' }));
        expect(await store.delete(items, 'a')).toBe(true);
        expect(await store.delete(items, 'a')).toBe(false);
        expect(await store.get(items, 'a')).toBeUndefined();
        expect(await store.findOne(items, 'hash', 'h')).toBeUndefined();
        expect(await store.findMany(items, 'owner', 'o')).toEqual([]);
        await store.insert(items, item('b', { hash: 'h' }));
        expect((await store.findOne(items, 'hash', 'h'))?.id).toBe('b');
      });

      it('hands out copies: callers cannot mutate stored rows', async () => {
        const row = item('a', { owner: 'o', data: { list: [1, 2], inner: { v: 'x' } } });
        await store.insert(items, row);
        (row.data as { list: number[] }).list.push(3);
        row.name = 'changed';

        const got = (await store.get(items, 'a'))!;
        expect(got.data).toEqual({ list: [1, 2], inner: { v: 'x' } });
        expect(got.name).toBeNull();
        (got.data as { inner: { v: string } }).inner.v = 'mutated';
        got.state = 'mutated';
        const [many] = await store.findMany(items, 'owner', 'o');
        (many!.data as { list: number[] }).list.length = 0;

        expect(await store.get(items, 'a')).toStrictEqual(item('a', { owner: 'o', data: { list: [1, 2], inner: { v: 'x' } } }));
      });
    });

    describe('uniqueness', () => {
      it('rejects an existing key with DuplicateKeyError and keeps the original row', async () => {
        await store.insert(items, item('a', { name: 'first' }));
        const error = await store.insert(items, item('a', { name: 'second' })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DuplicateKeyError);
        expect(error).toMatchObject({ table: 'suite_items', column: 'id' });
        expect((await store.get(items, 'a'))?.name).toBe('first');
      });

      it('rejects an existing unique value with DuplicateKeyError', async () => {
        await store.insert(items, item('a', { hash: 'h' }));
        const error = await store.insert(items, item('b', { hash: 'h' })).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(DuplicateKeyError);
        expect(error).toMatchObject({ table: 'suite_items', column: 'hash' });
        expect(await store.get(items, 'b')).toBeUndefined();
      });

      it('lets several rows hold null in a unique column', async () => {
        await store.insert(items, item('a', { hash: null }));
        await store.insert(items, item('b', { hash: null }));
        expect(await store.get(items, 'b')).toBeDefined();
      });

      it('rejects an update that would duplicate a unique value', async () => {
        await store.insert(items, item('a', { hash: 'h-a' }));
        await store.insert(items, item('b', { hash: 'h-b' }));
        await expect(store.update(items, 'b', { hash: 'h-a' })).rejects.toBeInstanceOf(DuplicateKeyError);
        expect((await store.get(items, 'b'))?.hash).toBe('h-b');
        expect((await store.findOne(items, 'hash', 'h-a'))?.id).toBe('a');
      });
    });

    describe('indexed lookups only', () => {
      it('refuses lookups on unindexed columns', async () => {
        await expect(store.findOne(items, 'note', 'x')).rejects.toBeInstanceOf(UnindexedLookupError);
        await expect(store.findMany(items, 'note', 'x')).rejects.toBeInstanceOf(UnindexedLookupError);
        await expect(store.updateWhere(items, 'note', 'x', { state: 'y' })).rejects.toBeInstanceOf(UnindexedLookupError);
      });

      it('refuses findOne on a non-unique indexed column', async () => {
        await expect(store.findOne(items, 'owner', 'o')).rejects.toBeInstanceOf(UnindexedLookupError);
      });
    });

    describe('insertIfAbsent', () => {
      it('lets exactly one of 50 concurrent inserts of a key win', async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.insertIfAbsent(items, item('k', { name: `caller-${i}` }))),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.get(items, 'k'))?.name).toBe(`caller-${results.indexOf(true)}`);
      });

      it('still rejects a unique value held by another key', async () => {
        await store.insert(items, item('a', { hash: 'h' }));
        expect(await store.insertIfAbsent(items, item('a', { hash: 'other' }))).toBe(false);
        await expect(store.insertIfAbsent(items, item('b', { hash: 'h' }))).rejects.toBeInstanceOf(DuplicateKeyError);
      });
    });

    describe('update (compare-and-set)', () => {
      it('applies the patch only when where matches', async () => {
        await store.insert(items, item('a', { state: 'open', name: 'keep', active: true }));
        expect(await store.update(items, 'a', { state: 'done' }, { state: 'closed' })).toBe(false);
        expect((await store.get(items, 'a'))?.state).toBe('open');
        expect(await store.update(items, 'a', { state: 'done', count: 7 }, { state: 'open', active: true })).toBe(true);
        expect(await store.get(items, 'a')).toStrictEqual(item('a', { state: 'done', name: 'keep', active: true, count: 7 }));
      });

      it('matches null in where against null values only', async () => {
        await store.insert(items, item('a', { note: null }));
        await store.insert(items, item('b', { note: 'set' }));
        expect(await store.update(items, 'a', { state: 'x' }, { note: null })).toBe(true);
        expect(await store.update(items, 'b', { state: 'x' }, { note: null })).toBe(false);
        expect((await store.get(items, 'b'))?.state).toBeNull();
      });

      it('sets a column to null and leaves the others alone', async () => {
        await store.insert(items, item('a', { name: 'n', owner: 'o', data: { k: 1 } }));
        expect(await store.update(items, 'a', { owner: null, data: [true] })).toBe(true);
        expect(await store.get(items, 'a')).toStrictEqual(item('a', { name: 'n', data: [true] }));
        expect(await store.findMany(items, 'owner', 'o')).toEqual([]);
      });

      it('lets exactly one of 20 concurrent transitions win', async () => {
        await store.insert(items, item('a', { state: 'open' }));
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.update(items, 'a', { state: 'done' }, { state: 'open' })),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('returns false for a missing key', async () => {
        expect(await store.update(items, 'missing', { state: 'done' })).toBe(false);
        expect(await store.get(items, 'missing')).toBeUndefined();
      });
    });

    describe('updateWhere', () => {
      beforeEach(async () => {
        await store.insert(items, item('a', { owner: 'o1', state: 'open' }));
        await store.insert(items, item('b', { owner: 'o1', state: 'open' }));
        await store.insert(items, item('c', { owner: 'o1', state: 'done' }));
        await store.insert(items, item('d', { owner: 'o2', state: 'open' }));
      });

      it('changes the matching rows and returns their count', async () => {
        expect(await store.updateWhere(items, 'owner', 'o1', { state: 'revoked' }, { state: 'open' })).toBe(2);
        const states = Object.fromEntries(
          await Promise.all(['a', 'b', 'c', 'd'].map(async (id) => [id, (await store.get(items, id))?.state])),
        );
        expect(states).toEqual({ a: 'revoked', b: 'revoked', c: 'done', d: 'open' });
        expect(await store.updateWhere(items, 'owner', 'o1', { note: 'all' })).toBe(3);
        expect(await store.updateWhere(items, 'owner', 'nobody', { note: 'x' })).toBe(0);
      });

      it('changes no row when one of them would duplicate a unique value', async () => {
        await expect(store.updateWhere(items, 'owner', 'o1', { hash: 'same', note: 'x' })).rejects.toBeInstanceOf(DuplicateKeyError);
        expect(await store.findOne(items, 'hash', 'same')).toBeUndefined();
        for (const row of await store.findMany(items, 'owner', 'o1')) expect(row).toMatchObject({ hash: null, note: null });
      });

      it('keeps the index right when it changes the indexed column itself', async () => {
        expect(await store.updateWhere(items, 'owner', 'o1', { owner: 'o3' })).toBe(3);
        expect(await store.findMany(items, 'owner', 'o1')).toEqual([]);
        expect(ids(await store.findMany(items, 'owner', 'o3'))).toEqual(['a', 'b', 'c']);
      });
    });

    describe('consumeOne', () => {
      it('gives the row to exactly one of 20 concurrent callers', async () => {
        await store.insert(items, item('a', { name: 'secret' }));
        const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeOne(items, 'a')));
        const winners = results.filter((row) => row !== undefined);
        expect(winners).toStrictEqual([item('a', { name: 'secret' })]);
        expect(await store.get(items, 'a')).toBeUndefined();
      });

      it('leaves the row alone when where does not match', async () => {
        await store.insert(items, item('a', { state: 'used' }));
        expect(await store.consumeOne(items, 'a', { state: 'fresh' })).toBeUndefined();
        expect(await store.get(items, 'a')).toBeDefined();
        expect((await store.consumeOne(items, 'a', { state: 'used' }))?.id).toBe('a');
        expect(await store.consumeOne(items, 'missing')).toBeUndefined();
      });
    });

    describe('incrementWithin', () => {
      const now = 1_000_000;

      it('counts up within a window', async () => {
        expect(await store.incrementWithin('k', 60_000, now)).toEqual({ count: 1, resetAt: now + 60_000 });
        expect(await store.incrementWithin('k', 60_000, now + 10)).toEqual({ count: 2, resetAt: now + 60_000 });
        expect(await store.incrementWithin('k', 60_000, now + 59_999)).toEqual({ count: 3, resetAt: now + 60_000 });
      });

      it('hands 100 concurrent increments the distinct counts 1..100', async () => {
        const states = await Promise.all(Array.from({ length: 100 }, () => store.incrementWithin('k', 60_000, now)));
        expect(states.map((s) => s.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      });

      it('opens a new window at or after resetAt', async () => {
        await store.incrementWithin('k', 1000, now);
        await store.incrementWithin('k', 1000, now + 500);
        expect(await store.incrementWithin('k', 1000, now + 1000)).toEqual({ count: 1, resetAt: now + 2000 });
        expect(await store.incrementWithin('k', 1000, now + 1500)).toEqual({ count: 2, resetAt: now + 2000 });
      });

      it('keeps separate keys independent', async () => {
        await store.incrementWithin('a', 1000, now);
        await store.incrementWithin('a', 1000, now);
        expect(await store.incrementWithin('b', 5000, now + 1)).toEqual({ count: 1, resetAt: now + 5001 });
        expect((await store.incrementWithin('a', 1000, now)).count).toBe(3);
      });

      it('keeps increments made by a failed transaction', async () => {
        const failure = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.incrementWithin('k', 1000, now);
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect((await store.incrementWithin('k', 1000, now)).count).toBe(2);
      });
    });

    describe('incrementTiers', () => {
      const now = 1_000_000;
      const tiers = (ipLimit: number) => [
        { key: 'tier:ip', windowMs: 1000, limit: ipLimit },
        { key: 'tier:service', windowMs: 5000, limit: 10 },
      ];

      it('counts every tier in order while each is within its limit', async () => {
        expect(await store.incrementTiers(tiers(2), now)).toEqual([
          { count: 1, resetAt: now + 1000 },
          { count: 1, resetAt: now + 5000 },
        ]);
        expect(await store.incrementTiers(tiers(2), now + 1)).toEqual([
          { count: 2, resetAt: now + 1000 },
          { count: 2, resetAt: now + 5000 },
        ]);
      });

      it('stops after the first tier over its limit: the tiers after it are not counted', async () => {
        await store.incrementTiers(tiers(1), now);
        expect(await store.incrementTiers(tiers(1), now)).toEqual([{ count: 2, resetAt: now + 1000 }]);
        expect(await store.incrementTiers(tiers(1), now)).toEqual([{ count: 3, resetAt: now + 1000 }]);
        expect(await store.incrementWithin('tier:service', 5000, now)).toEqual({ count: 2, resetAt: now + 5000 });
        // The last tier over its limit is returned like any other.
        expect((await store.incrementTiers([{ key: 'tier:last', windowMs: 1000, limit: 0 }], now)).map((state) => state.count)).toEqual([1]);
      });

      it('opens new windows like incrementWithin, tier by tier', async () => {
        await store.incrementTiers(tiers(5), now);
        expect(await store.incrementTiers(tiers(5), now + 1000)).toEqual([
          { count: 1, resetAt: now + 2000 },
          { count: 2, resetAt: now + 5000 },
        ]);
      });

      it('counts a key named by two tiers twice, and three tiers, and none', async () => {
        expect(await store.incrementTiers([{ key: 'same', windowMs: 1000, limit: 5 }, { key: 'same', windowMs: 1000, limit: 5 }], now)).toEqual([
          { count: 1, resetAt: now + 1000 },
          { count: 2, resetAt: now + 1000 },
        ]);
        const three = [1, 2, 3].map((i) => ({ key: `three:${i}`, windowMs: 1000, limit: 1 }));
        expect((await store.incrementTiers(three, now)).map((state) => state.count)).toEqual([1, 1, 1]);
        await store.incrementWithin('three:2', 1000, now);
        expect((await store.incrementTiers(three, now)).map((state) => state.count)).toEqual([2]);
        expect(await store.incrementTiers([], now)).toEqual([]);
      });

      it('hands 50 concurrent calls distinct counts on the first tier', async () => {
        const states = await Promise.all(Array.from({ length: 50 }, () => store.incrementTiers(tiers(100), now)));
        expect(states.map((s) => s[0]!.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(states.map((s) => s[1]!.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      });
    });

    describe('takeDue', () => {
      it('hands over due rows oldest first, at most limit, each exactly once', async () => {
        for (const [id, due] of [['late', 300], ['early', 100], ['mid', 200], ['future', 5000]] as const) {
          await store.insert(items, item(id, { count: due }));
        }
        expect((await store.takeDue(items, 'count', 1000, 2)).map((row) => row.id)).toEqual(['early', 'mid']);
        expect((await store.takeDue(items, 'count', 1000, 10)).map((row) => row.id)).toEqual(['late']);
        expect(await store.takeDue(items, 'count', 1000, 10)).toEqual([]);
        expect(await store.get(items, 'future')).toBeDefined();
        await expect(store.takeDue(items, 'name', 1000, 10)).rejects.toThrow(UnindexedLookupError);
      });

      it('never gives one row to two concurrent callers', async () => {
        for (let i = 0; i < 50; i++) await store.insert(items, item(`r${i}`, { count: i }));
        const batches = await Promise.all(Array.from({ length: 10 }, () => store.takeDue(items, 'count', 1000, 7)));
        const taken = batches.flat().map((row) => row.id);
        expect(taken).toHaveLength(50);
        expect(new Set(taken).size).toBe(50);
      });
    });

    describe('findDue', () => {
      it('lists due rows oldest first, at most limit, and leaves them in place', async () => {
        for (const [id, due] of [['late', 300], ['early', 100], ['future', 5000]] as const) await store.insert(items, item(id, { count: due }));
        expect((await store.findDue(items, 'count', 1000, 10)).map((row) => row.id)).toEqual(['early', 'late']);
        expect((await store.findDue(items, 'count', 1000, 1)).map((row) => row.id)).toEqual(['early']);
        expect(await store.get(items, 'early')).toBeDefined();
        await expect(store.findDue(items, 'name', 1000, 10)).rejects.toThrow(UnindexedLookupError);
      });

      it('leasing a due row by compare-and-set gives it to one worker only', async () => {
        await store.insert(items, item('job', { count: 100 }));
        const [due] = await store.findDue(items, 'count', 1000, 10);
        const leases = await Promise.all(Array.from({ length: 10 }, () => store.update(items, 'job', { count: 60_000 }, { count: due!.count })));
        expect(leases.filter(Boolean)).toHaveLength(1);
        expect(await store.findDue(items, 'count', 1000, 10)).toEqual([]);
      });
    });

    describe('page', () => {
      beforeEach(async () => {
        await store.migrate([entries]);
        for (const row of timeline) await store.insert(entries, row);
      });

      /** Every page of `query`, each starting after the last row of the one before, up to the empty one. */
      async function allPages(query: Omit<PageQuery<Entry>, 'after'>): Promise<string[][]> {
        const pages: string[][] = [];
        let after: PageQuery<Entry>['after'];
        for (;;) {
          const rows = await store.page(entries, { ...query, ...(after ? { after } : {}) });
          pages.push(inOrder(rows));
          if (rows.length === 0) return pages;
          after = cursorOf(rows.at(-1)!);
        }
      }

      it('lists rows newest first, ties by key descending, page after page, and skips null order values', async () => {
        expect(await allPages({ orderBy: 'created_at', limit: 3 })).toEqual([
          ['e12', 'e09', 'e08'],
          ['e07', 'e06', 'e05'],
          ['e04', 'e03', 'e02'],
          ['e01', 'e11'],
          [],
        ]);
        const whole = await store.page(entries, { orderBy: 'created_at', limit: 1000 });
        expect(inOrder(whole)).toEqual(['e12', 'e09', 'e08', 'e07', 'e06', 'e05', 'e04', 'e03', 'e02', 'e01', 'e11']);
        expect(whole[0]).toStrictEqual(timeline.find((row) => row.id === 'e12'));
        // A cursor inside a tie that names no row: the rows of the tie with a smaller key, then older ones.
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', after: { value: 200, key: 'e035' }, limit: 2 }))).toEqual(['e03', 'e02']);
        expect(await store.page(entries, { orderBy: 'created_at', after: { value: 50, key: 'e11' }, limit: 10 })).toEqual([]);
      });

      it('combines where, range and after', async () => {
        const o1 = { orderBy: 'created_at', where: { column: 'owner', value: 'o1' }, range: { from: 100, to: 600 } } as const;
        expect(await allPages({ ...o1, limit: 2 })).toEqual([['e07', 'e06'], ['e04', 'e03'], ['e01'], []]);
        // A cursor above `to` starts at `to`; `from` alone, `to` alone.
        expect(inOrder(await store.page(entries, { ...o1, after: { value: 10_000, key: 'z' }, limit: 2 }))).toEqual(['e07', 'e06']);
        expect(inOrder(await store.page(entries, { ...o1, range: { from: 400 }, limit: 10 }))).toEqual(['e09', 'e07', 'e06']);
        expect(inOrder(await store.page(entries, { ...o1, range: { to: 200 }, limit: 10 }))).toEqual(['e01', 'e11']);
        expect(inOrder(await store.page(entries, { ...o1, range: { from: 200, to: 201 }, after: { value: 200, key: 'e04' }, limit: 10 }))).toEqual(['e03']);
        expect(await store.page(entries, { ...o1, range: { from: 300, to: 300 }, limit: 10 })).toEqual([]);
        expect(await store.page(entries, { ...o1, where: { column: 'owner', value: 'nobody' }, limit: 10 })).toEqual([]);
      });

      it('orders by a text column', async () => {
        const first = await store.page(entries, { orderBy: 'label', limit: 2 });
        expect(inOrder(first)).toEqual(['e01', 'e05']);
        expect(inOrder(await store.page(entries, { orderBy: 'label', after: { value: first[1]!.label!, key: 'e05' }, limit: 10 }))).toEqual(['e08', 'e02']);
        await expect(store.page(entries, { orderBy: 'label', after: { value: 5, key: 'e05' }, limit: 10 })).rejects.toBeInstanceOf(TypeError);
        await expect(store.page(entries, { orderBy: 'label', range: { from: 1 }, limit: 10 })).rejects.toBeInstanceOf(TypeError);
      });

      it('takes a limit from 1 to 1000', async () => {
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', limit: 1 }))).toEqual(['e12']);
        expect(await store.page(entries, { orderBy: 'created_at', limit: 1000 })).toHaveLength(11);
        for (const limit of [0, -1, 1001, 2.5, Number.NaN]) {
          await expect(store.page(entries, { orderBy: 'created_at', limit })).rejects.toBeInstanceOf(RangeError);
        }
      });

      it('refuses an order, or an order with where, that no ordered index declares', async () => {
        const refusals: [PageQuery<Entry>, string][] = [
          [{ orderBy: 'note', limit: 10 }, 'note'],
          [{ orderBy: 'created_at', where: { column: 'state', value: 'open' }, limit: 10 }, 'state'],
          [{ orderBy: 'label', where: { column: 'owner', value: 'o1' }, limit: 10 }, 'owner'],
          [{ orderBy: 'id', limit: 10 }, 'id'],
        ];
        for (const [query, column] of refusals) {
          const error = await store.page(entries, query).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UnindexedLookupError);
          expect(error).toMatchObject({ table: 'suite_entries', column });
        }
        await expect(store.page(items, { orderBy: 'count', limit: 10 })).rejects.toBeInstanceOf(UnindexedLookupError);
      });

      it('follows writes: an update moves a row, a delete removes it, a rolled-back transaction changes nothing', async () => {
        await store.update(entries, 'e11', { created_at: 550 });
        await store.update(entries, 'e08', { owner: 'o1' });
        await store.delete(entries, 'e09');
        await store.update(entries, 'e12', { created_at: null });
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', limit: 3 }))).toEqual(['e11', 'e08', 'e07']);
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', where: { column: 'owner', value: 'o1' }, limit: 3 }))).toEqual(['e11', 'e08', 'e07']);
        const failure = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.insert(entries, entry('e13', 900, { owner: 'o1' }));
            await tx.update(entries, 'e07', { created_at: 800 });
            await tx.delete(entries, 'e11');
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', where: { column: 'owner', value: 'o1' }, limit: 3 }))).toEqual(['e11', 'e08', 'e07']);
      });

      it('inside a transaction, sees its own uncommitted writes', async () => {
        await store.transaction(async (tx) => {
          await tx.insert(entries, entry('e20', 1000, { owner: 'o2' }));
          await tx.update(entries, 'e01', { created_at: 999 });
          expect(inOrder(await tx.page(entries, { orderBy: 'created_at', limit: 3 }))).toEqual(['e20', 'e01', 'e12']);
          expect(inOrder(await tx.page(entries, { orderBy: 'created_at', where: { column: 'owner', value: 'o2' }, limit: 2 }))).toEqual(['e20', 'e08']);
        });
        expect(inOrder(await store.page(entries, { orderBy: 'created_at', limit: 3 }))).toEqual(['e20', 'e01', 'e12']);
      });
    });

    describe('count', () => {
      beforeEach(async () => {
        await store.migrate([entries]);
        for (const row of timeline) await store.insert(entries, row);
      });

      it('counts the rows matching every equality, null matching null', async () => {
        expect(await store.count(entries, { owner: 'o1' })).toBe(8);
        expect(await store.count(entries, { owner: 'o2' })).toBe(3);
        expect(await store.count(entries, { owner: null })).toBe(1);
        expect(await store.count(entries, { owner: 'o1', note: null })).toBe(6);
        expect(await store.count(entries, { owner: 'o1', note: 'n' })).toBe(2);
        expect(await store.count(entries, { owner: 'o1', created_at: null })).toBe(1);
        expect(await store.count(entries, { owner: 'o1', state: 'open', note: undefined })).toBe(2);
        expect(await store.count(entries, { state: 'open' })).toBe(4);
        expect(await store.count(entries, { state: null, owner: 'o2' })).toBe(2);
        expect(await store.count(entries, { id: 'e01' })).toBe(1);
        expect(await store.count(entries, { id: 'e01', owner: 'o2' })).toBe(0);
        expect(await store.count(entries, { label: 'alpha' })).toBe(1);
        expect(await store.count(entries, { owner: 'nobody' })).toBe(0);
      });

      it('refuses a where with no indexed column', async () => {
        for (const where of [{ note: 'n' }, { note: 'n', created_at: 100 }, {}, { owner: undefined, note: 'n' }] as Where<Entry>[]) {
          const error = await store.count(entries, where).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UnindexedLookupError);
          expect(error).toMatchObject({ table: 'suite_entries' });
        }
      });

      it('inside a transaction, counts its own uncommitted writes', async () => {
        await store.transaction(async (tx) => {
          await tx.insert(entries, entry('e20', 1000, { owner: 'o2' }));
          await tx.update(entries, 'e01', { owner: 'o2' });
          expect(await tx.count(entries, { owner: 'o2' })).toBe(5);
        });
        expect(await store.count(entries, { owner: 'o1' })).toBe(7);
      });
    });

    describe('peekCounter and clearCounter', () => {
      const now = 1_000_000;

      it('peeks at a counter without counting, until its window ends', async () => {
        expect(await store.peekCounter('k', now)).toBeUndefined();
        for (let i = 0; i < 3; i++) await store.incrementWithin('k', 1000, now);
        expect(await store.peekCounter('k', now + 1)).toEqual({ count: 3, resetAt: now + 1000 });
        expect(await store.peekCounter('k', now + 999)).toEqual({ count: 3, resetAt: now + 1000 });
        expect(await store.incrementWithin('k', 1000, now + 2)).toEqual({ count: 4, resetAt: now + 1000 });
        expect(await store.peekCounter('k', now + 1000)).toBeUndefined();
        expect(await store.peekCounter('other', now)).toBeUndefined();
        expect(await store.transaction((tx) => tx.peekCounter('k', now))).toEqual({ count: 4, resetAt: now + 1000 });
      });

      it('clears a counter: its next increment starts again from 1', async () => {
        await store.incrementWithin('k', 1000, now);
        await store.incrementWithin('k', 1000, now);
        await store.incrementWithin('kept', 1000, now);
        expect(await store.clearCounter('k')).toBe(true);
        expect(await store.peekCounter('k', now)).toBeUndefined();
        expect(await store.clearCounter('k')).toBe(false);
        expect(await store.clearCounter('never')).toBe(false);
        expect(await store.incrementWithin('k', 1000, now + 10)).toEqual({ count: 1, resetAt: now + 1010 });
        expect(await store.peekCounter('kept', now)).toEqual({ count: 1, resetAt: now + 1000 });
      });

      it('keeps a clear made by a failed transaction, as it keeps increments', async () => {
        await store.incrementWithin('k', 1000, now);
        await store.incrementWithin('k', 1000, now);
        const failure = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            expect(await tx.clearCounter('k')).toBe(true);
            await tx.incrementWithin('j', 1000, now);
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await store.peekCounter('k', now)).toBeUndefined();
        expect(await store.peekCounter('j', now)).toEqual({ count: 1, resetAt: now + 1000 });
        expect((await store.incrementWithin('k', 1000, now)).count).toBe(1);
      });
    });

    describe('transaction', () => {
      it('keeps concurrent transactions apart: one that throws takes only its own writes with it', async () => {
        const outcomes = await Promise.allSettled(
          Array.from({ length: 12 }, (_, i) =>
            store.transaction(async (tx) => {
              await tx.insert(items, item(`t${i}`, { count: i }));
              await tx.incrementWithin('shared-counter', 60_000, 1000);
              if (i % 3 === 0) throw new Error(`boom ${i}`);
              await tx.update(items, `t${i}`, { state: 'done' });
              return i;
            }),
          ),
        );
        for (const [i, outcome] of outcomes.entries()) {
          const row = await store.get(items, `t${i}`);
          if (i % 3 === 0) {
            expect(outcome).toEqual({ status: 'rejected', reason: new Error(`boom ${i}`) });
            expect(row).toBeUndefined();
          } else {
            expect(outcome).toEqual({ status: 'fulfilled', value: i });
            expect(row?.state).toBe('done');
          }
        }
        // Counters are kept even for the transactions that failed.
        expect((await store.incrementWithin('shared-counter', 60_000, 1000)).count).toBe(13);
      });

      it('runs a rerunnable transaction like any other: a shared read, appends and other writes land once', async () => {
        await store.insert(items, item('read', { state: 'open' }));
        await store.insert(items, item('other'));
        let runs = 0;
        const result = await store.transaction(
          async (tx) => {
            runs++;
            const read = await tx.get(items, 'read', { shared: true });
            await tx.append(items, item('appended', { state: read?.state ?? null }));
            return read?.state;
          },
          { rerunnable: true },
        );
        expect(result).toBe('open');
        expect(runs).toBe(1);
        expect((await store.get(items, 'appended'))?.state).toBe('open');
        await store.transaction(
          async (tx) => {
            const read = await tx.get(items, 'read', { shared: true });
            await tx.update(items, 'other', { state: read?.state ?? null });
          },
          { rerunnable: true },
        );
        expect((await store.get(items, 'other'))?.state).toBe('open');
      });

      it('commits every write and returns the result', async () => {
        await store.insert(items, item('old', { state: 'open' }));
        await store.insert(items, item('gone'));
        const result = await store.transaction(async (tx) => {
          await tx.insert(items, item('new', { hash: 'h' }));
          await tx.update(items, 'old', { state: 'done' });
          await tx.delete(items, 'gone');
          expect((await tx.get(items, 'new'))?.hash).toBe('h');
          return 'ok';
        });
        expect(result).toBe('ok');
        expect((await store.findOne(items, 'hash', 'h'))?.id).toBe('new');
        expect((await store.get(items, 'old'))?.state).toBe('done');
        expect(await store.get(items, 'gone')).toBeUndefined();
      });

      it('goes on after a DuplicateKeyError the function caught: the failed write changed nothing, later writes commit', async () => {
        await store.insert(items, item('taken', { hash: 'h-taken' }));
        await store.insert(items, item('other', { hash: 'h-other' }));
        await store.transaction(async (tx) => {
          await expect(tx.insert(items, item('taken', { hash: 'h-new' }))).rejects.toBeInstanceOf(DuplicateKeyError);
          const byUnique = await tx.insert(items, item('fresh', { hash: 'h-taken' })).catch((e: unknown) => e);
          expect(byUnique).toBeInstanceOf(DuplicateKeyError);
          expect((byUnique as DuplicateKeyError).column).toBe('hash');
          await expect(tx.insertIfAbsent(items, item('fresh', { hash: 'h-taken' }))).rejects.toBeInstanceOf(DuplicateKeyError);
          expect(await tx.insertIfAbsent(items, item('taken', { hash: 'h-new' }))).toBe(false);
          await expect(tx.update(items, 'other', { hash: 'h-taken' })).rejects.toBeInstanceOf(DuplicateKeyError);
          await tx.insert(items, item('after', { hash: 'h-after' }));
          expect(await tx.update(items, 'other', { state: 'done' })).toBe(true);
        });
        expect(await store.get(items, 'fresh')).toBeUndefined();
        expect((await store.get(items, 'after'))?.hash).toBe('h-after');
        expect(await store.get(items, 'other')).toStrictEqual(item('other', { hash: 'h-other', state: 'done' }));
        expect(await store.get(items, 'taken')).toStrictEqual(item('taken', { hash: 'h-taken' }));
      });

      it('append: rows appended in a transaction are read back by it and land together at its commit', async () => {
        await store.transaction(async (tx) => {
          await tx.append(items, item('a1', { hash: 'h-a1', owner: 'o-append', data: { scopes: ['x'] } }));
          await tx.append(items, item('a2', { owner: 'o-append' }));
          expect((await tx.get(items, 'a1'))?.data).toStrictEqual({ scopes: ['x'] });
          await tx.append(items, item('a3', { owner: 'o-append' }));
        });
        expect((await store.findMany(items, 'owner', 'o-append')).map((row) => row.id).sort()).toStrictEqual(['a1', 'a2', 'a3']);
        expect(await store.get(items, 'a1')).toStrictEqual(item('a1', { hash: 'h-a1', owner: 'o-append', data: { scopes: ['x'] } }));
      });

      it('append: a duplicate key or unique value fails the whole transaction with DuplicateKeyError, and none of it lands', async () => {
        await store.insert(items, item('taken', { hash: 'h-taken' }));
        for (const [duplicate, column] of [
          [item('taken', { hash: 'h-1' }), 'id'],
          [item('fresh', { hash: 'h-taken' }), 'hash'],
        ] as const) {
          const failure = await store
            .transaction(async (tx) => {
              await tx.insert(items, item('before', { owner: 'o-dup' }));
              await tx.append(items, duplicate);
              await tx.append(items, item('after', { owner: 'o-dup' }));
            })
            .catch((error: unknown) => error);
          expect(failure).toBeInstanceOf(DuplicateKeyError);
          expect((failure as DuplicateKeyError).column).toBe(column);
          expect(await store.findMany(items, 'owner', 'o-dup')).toStrictEqual([]);
          expect(await store.get(items, 'fresh')).toBeUndefined();
        }
        // Reported by the next statement of the transaction when one follows.
        const byRead = await store
          .transaction(async (tx) => {
            await tx.append(items, item('taken'));
            await tx.get(items, 'taken');
            return 'read';
          })
          .catch((error: unknown) => error);
        expect(byRead).toBeInstanceOf(DuplicateKeyError);
        expect(await store.get(items, 'taken')).toStrictEqual(item('taken', { hash: 'h-taken' }));
      });

      it('append: 8,000 rows in one transaction (a bulk import) land whole, and a duplicate as the last one takes them all back', async () => {
        // 80,000 values: more than one PostgreSQL statement can carry (65,535 parameters).
        const bulk = (prefix: string) => Array.from({ length: 8_000 }, (_, i) => item(`${prefix}${i}`, { owner: `o-${prefix}`, count: i, note: 'n' }));
        await store.transaction(async (tx) => {
          for (const row of bulk('bulk-')) await tx.append(items, row);
        });
        const landed = await store.findMany(items, 'owner', 'o-bulk-', 10_000);
        expect(landed.length).toBe(8_000);
        expect(await store.get(items, 'bulk-7999')).toStrictEqual(item('bulk-7999', { owner: 'o-bulk-', count: 7999, note: 'n' }));

        const failure = await store
          .transaction(async (tx) => {
            for (const row of bulk('undone-')) await tx.append(items, row);
            await tx.append(items, item('bulk-0'));
          })
          .catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(DuplicateKeyError);
        expect(await store.findMany(items, 'owner', 'o-undone-', 10_000)).toStrictEqual([]);
      });

      it('append outside a transaction is insert: a duplicate is refused at once', async () => {
        await store.append(items, item('solo', { hash: 'h-solo' }));
        expect((await store.get(items, 'solo'))?.hash).toBe('h-solo');
        await expect(store.append(items, item('solo'))).rejects.toBeInstanceOf(DuplicateKeyError);
        const byUnique = await store.append(items, item('other', { hash: 'h-solo' })).catch((error: unknown) => error);
        expect((byUnique as DuplicateKeyError).column).toBe('hash');
      });

      it('rolls back every write when fn throws, and rethrows the same error', async () => {
        await store.insert(items, item('upd', { state: 'open', hash: 'h-upd', owner: 'o' }));
        await store.insert(items, item('del', { hash: 'h-del', owner: 'o' }));
        await store.insert(items, item('eat', { owner: 'o' }));
        const failure = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            await tx.insert(items, item('ins', { hash: 'h-ins', owner: 'o' }));
            await tx.update(items, 'upd', { state: 'done', hash: 'h-moved' });
            await tx.delete(items, 'del');
            await tx.consumeOne(items, 'eat');
            await tx.updateWhere(items, 'owner', 'o', { note: 'touched' });
            throw failure;
          }),
        ).rejects.toBe(failure);

        expect(await store.get(items, 'ins')).toBeUndefined();
        expect(await store.get(items, 'upd')).toStrictEqual(item('upd', { state: 'open', hash: 'h-upd', owner: 'o' }));
        expect(await store.get(items, 'del')).toStrictEqual(item('del', { hash: 'h-del', owner: 'o' }));
        expect(await store.get(items, 'eat')).toStrictEqual(item('eat', { owner: 'o' }));
        expect(ids(await store.findMany(items, 'owner', 'o'))).toEqual(['del', 'eat', 'upd']);
        expect((await store.findOne(items, 'hash', 'h-upd'))?.id).toBe('upd');
        expect(await store.findOne(items, 'hash', 'h-moved')).toBeUndefined();
        await store.insert(items, item('again', { hash: 'h-ins' }));
      });

      it('hides uncommitted writes from reads on the store', async () => {
        const inserted = deferred();
        const release = deferred();
        let committed = false;
        const running = store
          .transaction(async (tx) => {
            await tx.insert(items, item('pending', { owner: 'p' }));
            inserted.resolve();
            await release.promise;
          })
          .then(() => (committed = true));
        await inserted.promise;

        // A read may wait for the transaction or answer from committed data; it must never see the
        // pending row before the commit.
        const seen: { row: unknown; afterCommit: boolean }[] = [];
        const reads = [
          store.get(items, 'pending').then((row) => seen.push({ row, afterCommit: committed })),
          store.findMany(items, 'owner', 'p').then((rows) => seen.push({ row: rows[0], afterCommit: committed })),
        ];
        // Reads that answer from committed data get up to a second to answer before the release.
        // Otherwise a query sent on another connection before the release, but run by the server after
        // the COMMIT, would rightly see the row while the transaction's promise is still settling
        // (PostgreSQL under load). On a store whose reads wait for the transaction, that second passes.
        const answered = Promise.all(reads);
        let waited: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([answered, new Promise((done) => (waited = setTimeout(done, 1000)))]);
        clearTimeout(waited);
        for (let i = 0; i < 5; i++) await tick();
        for (const s of seen) expect(s.row).toBeUndefined();

        release.resolve();
        await running;
        await answered;
        expect(seen).toHaveLength(2);
        for (const s of seen) if (!s.afterCommit) expect(s.row).toBeUndefined();
        expect(await store.get(items, 'pending')).toBeDefined();
      });

      it('serializes concurrent read-modify-write transactions', async () => {
        await store.insert(items, item('ctr', { count: 0 }));
        const bump = () =>
          store.transaction(async (tx) => {
            const row = await tx.get(items, 'ctr');
            await tick();
            await tx.update(items, 'ctr', { count: row!.count! + 1 });
          });
        await Promise.all([bump(), bump()]);
        expect((await store.get(items, 'ctr'))?.count).toBe(2);
      });

      it('runs a nested transaction inline, committing with the outer one', async () => {
        const result = await store.transaction(async (tx) => {
          await tx.insert(items, item('outer'));
          return tx.transaction(async (inner) => {
            await inner.insert(items, item('inner'));
            expect(await inner.get(items, 'outer')).toBeDefined();
            return 'nested';
          });
        });
        expect(result).toBe('nested');
        expect(await store.get(items, 'outer')).toBeDefined();
        expect(await store.get(items, 'inner')).toBeDefined();
      });

      it('rolls back a nested transaction with the outer one', async () => {
        const failure = new Error('outer fails');
        await expect(
          store.transaction(async (tx) => {
            await tx.transaction(async (inner) => inner.insert(items, item('inner')));
            expect(await tx.get(items, 'inner')).toBeDefined();
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await store.get(items, 'inner')).toBeUndefined();
      });
    });

    describe('purgeExpired', () => {
      const now = 2_000_000;

      it('deletes exactly the rows that expired before now, and expired counters', async () => {
        await store.insert(items, item('past', { expires_at: now - 1000 }));
        await store.insert(items, item('just-past', { expires_at: now - 1, hash: 'h' }));
        await store.insert(items, item('at-now', { expires_at: now }));
        await store.insert(items, item('future', { expires_at: now + 1 }));
        await store.insert(items, item('never', { expires_at: null }));
        await store.incrementWithin('stale', 1000, now - 5000);
        await store.incrementWithin('live', 1000, now - 10);

        expect(await store.purgeExpired(now)).toBe(3);
        for (const id of ['past', 'just-past']) expect(await store.get(items, id)).toBeUndefined();
        for (const id of ['at-now', 'future', 'never']) expect(await store.get(items, id)).toBeDefined();
        expect(await store.findOne(items, 'hash', 'h')).toBeUndefined();
        expect((await store.incrementWithin('live', 1000, now - 5)).count).toBe(2);
        expect(await store.purgeExpired(now)).toBe(0);
      });

      it('purges 5,000 expired rows quickly', async () => {
        await store.transaction(async (tx) => {
          for (let i = 0; i < 5000; i++) await tx.insert(items, item(`x${i}`, { expires_at: now - 1 - i, owner: 'bulk' }));
          for (let i = 0; i < 10; i++) await tx.insert(items, item(`keep${i}`, { expires_at: now + i, owner: 'bulk' }));
        });
        const started = performance.now();
        expect(await store.purgeExpired(now)).toBe(5000);
        expect(performance.now() - started).toBeLessThan(2000);
        expect(ids(await store.findMany(items, 'owner', 'bulk'))).toHaveLength(10);
      });
    });

    describe('migrate', () => {
      it('is harmless when run again', async () => {
        await store.insert(items, item('a', { hash: 'h', owner: 'o' }));
        await store.migrate([items]);
        await store.migrate([items, items]);
        expect(await store.get(items, 'a')).toStrictEqual(item('a', { hash: 'h', owner: 'o' }));
        expect(ids(await store.findMany(items, 'owner', 'o'))).toEqual(['a']);
        await expect(store.insert(items, item('b', { hash: 'h' }))).rejects.toBeInstanceOf(DuplicateKeyError);
      });

      it('adds the columns of a newer spec and keeps existing rows', async () => {
        await store.migrate([evolvingV1]);
        await store.insert(evolvingV1, { id: 'old', a: 'kept' });
        await store.migrate([evolvingV2]);
        expect(await store.get(evolvingV2, 'old')).toStrictEqual({ id: 'old', a: 'kept', b: null, c: null, flag: null });
        await store.insert(evolvingV2, { id: 'new', a: null, b: 'B', c: { v: [1] }, flag: false });
        expect(await store.findMany(evolvingV2, 'b', 'B')).toStrictEqual([{ id: 'new', a: null, b: 'B', c: { v: [1] }, flag: false }]);
        expect(await store.update(evolvingV2, 'old', { b: 'B' })).toBe(true);
        expect(ids(await store.findMany(evolvingV2, 'b', 'B'))).toEqual(['new', 'old']);
      });

      it('creates the ordered indexes a newer spec declares over the rows a table already holds', async () => {
        await store.migrate([evolvingV1]);
        await store.insert(evolvingV1, { id: 'old1', a: 'm' });
        await store.insert(evolvingV1, { id: 'old2', a: 'z' });
        await store.insert(evolvingV1, { id: 'old3', a: null });
        await store.migrate([evolvingV3]);
        expect(inOrder(await store.page(evolvingV3, { orderBy: 'a', limit: 10 }))).toEqual(['old2', 'old1']);
        await store.insert(evolvingV3, { id: 'new', a: 'n', b: 'B', c: null, flag: null });
        await store.update(evolvingV3, 'old1', { b: 'B' });
        expect(inOrder(await store.page(evolvingV3, { orderBy: 'a', where: { column: 'b', value: 'B' }, limit: 10 }))).toEqual(['new', 'old1']);
        expect(await store.count(evolvingV3, { b: 'B' })).toBe(2);
        await store.migrate([evolvingV3]);
        expect(inOrder(await store.page(evolvingV3, { orderBy: 'a', limit: 10 }))).toEqual(['old2', 'new', 'old1']);
      });

      it('refuses an ordered index on a column that is not declared, or that is neither integer nor text', async () => {
        await expect(store.migrate([table<Entry>({ ...entries, name: 'suite_bad_ordered', ordered: [{ by: 'nope' as 'note' }] })])).rejects.toThrow(/not a declared column/);
        await expect(store.migrate([table<Item>({ ...items, name: 'suite_bad_ordered', ordered: [{ by: 'count', eq: 'data' }] })])).rejects.toThrow(/integer or text/);
        await expect(store.migrate([table<Item>({ ...items, name: 'suite_bad_ordered', ordered: [{ by: 'active' }] })])).rejects.toThrow(/integer or text/);
      });

      if (capabilities.persistent) it('keeps data across close and reopen', async () => {
        await store.migrate([evolvingV1]);
        await store.insert(items, item('a', { hash: 'h', data: { k: [1] }, active: true, expires_at: 5 }));
        await store.insert(evolvingV1, { id: 'e', a: 'x' });
        await store.incrementWithin('k', 60_000, 1000);
        await store.close();

        store = await opened.reopen!();
        await store.migrate([items, evolvingV2]);
        expect(await store.get(items, 'a')).toStrictEqual(item('a', { hash: 'h', data: { k: [1] }, active: true, expires_at: 5 }));
        expect((await store.findOne(items, 'hash', 'h'))?.id).toBe('a');
        expect(await store.get(evolvingV2, 'e')).toStrictEqual({ id: 'e', a: 'x', b: null, c: null, flag: null });
        expect((await store.incrementWithin('k', 60_000, 1001)).count).toBe(2);
        expect(await store.purgeExpired(10)).toBe(1);
      });
    });
  });
}
