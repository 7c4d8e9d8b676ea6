import { afterEach, describe, expect, it } from 'vitest';
import { withRedis, type WithRedisOptions } from '@authmd/core/redis';
import { StoreUnavailableError, type Store, type Subscription } from '../../../src/store/contract.ts';
import { createMemoryStore } from '../../../src/store/memory/memory-store.ts';
import { relay } from '../../../../../test-support/postgres.ts';
import { createPlainClient, dropPrefix, REDIS_URL, slowRelay, uniquePrefix } from '../../../../../test-support/redis.ts';

/**
 * Two withRedis stores on one Redis and one prefix are two processes (replicas): each has its own
 * connections and its own inner store, so whatever they share went through Redis.
 */

let prefix: string;
let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
  await dropPrefix(prefix);
});

function replica(options: Partial<WithRedisOptions> = {}): Store {
  const store = withRedis(createMemoryStore(), { url: REDIS_URL, prefix, ...options } as WithRedisOptions);
  cleanups.push(() => store.close());
  return store;
}

interface Heard {
  messages: (string | undefined)[];
  subscription: Subscription;
}

function listen(store: Store, topic = 'tokens'): Heard {
  const messages: (string | undefined)[] = [];
  return { messages, subscription: store.subscribe!(topic, (message) => messages.push(message)) };
}

async function until(what: string, condition: () => boolean, withinMs = 5000): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > withinMs) throw new Error(`${what}: not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('withRedis: invalidation between processes', () => {
  it('delivers a broadcast to the other process before broadcast resolves, even when that process is slow', async () => {
    prefix = uniquePrefix();
    // B hears everything 150 ms late; A would wait up to 5 s for an acknowledgement that never came.
    const slow = await slowRelay(150);
    cleanups.push(() => slow.close());
    const a = replica({ echoTimeoutMs: 5000 });
    const b = replica({ url: slow.url });
    const onA = listen(a);
    const onB = listen(b);
    await until('both subscriptions live', () => onA.subscription.live && onB.subscription.live);
    expect(a.kind).toBe('memory+redis');

    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      await a.broadcast!('tokens', `revoked-${round}`);
      // Not just A's own echo: B ran its listener and acknowledged, well before the 5 s bound.
      expect(onB.messages).toContain(`revoked-${round}`);
      expect(onA.messages).toContain(`revoked-${round}`);
      expect(performance.now() - started).toBeLessThan(2500);
    }
    // Topics are kept apart.
    const other = listen(b, 'jwks');
    await a.broadcast!('jwks', 'https://provider.example/jwks');
    expect(other.messages.filter((m) => m !== undefined)).toEqual(['https://provider.example/jwks']);
    expect(onB.messages.filter((m) => m !== undefined)).toEqual(['revoked-0', 'revoked-1', 'revoked-2']);
  });

  it('waits for as many acknowledgements as PUBLISH counted receivers, and no longer than echoTimeoutMs', async () => {
    prefix = uniquePrefix();
    const a = replica({ echoTimeoutMs: 1000 });
    const onA = listen(a);
    await until('A subscribed', () => onA.subscription.live);
    let started = performance.now();
    await a.broadcast!('tokens', 'alone');
    expect(performance.now() - started).toBeLessThan(900); // only its own echo to wait for

    // A receiver that never acknowledges (not a withRedis store): A waits for it, up to the bound, then resolves.
    const mute = createPlainClient({ url: REDIS_URL });
    await mute.connect();
    cleanups.push(async () => mute.destroy());
    const seen: string[] = [];
    await mute.subscribe(`${prefix}invalidation`, (message) => seen.push(message));
    started = performance.now();
    await a.broadcast!('tokens', 'unanswered');
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(seen).toHaveLength(1);
  });

  it('is not live while Redis is unreachable, and says "everything changed" once it is back', async () => {
    prefix = uniquePrefix();
    const target = new URL(REDIS_URL);
    let link = await relay(target);
    const port = link.port;
    cleanups.push(() => link.cut());
    const a = replica();
    const b = replica({ url: `redis://127.0.0.1:${port}` });
    const onB = listen(b);
    await until('B subscribed', () => onB.subscription.live);
    expect(onB.messages).toEqual([undefined]); // connecting: whatever was sent before is unknown

    await link.cut();
    await until('B no longer live', () => !onB.subscription.live);
    // Missed by B: it was down.
    await a.broadcast!('tokens', 'while-b-was-down');
    // B fails fast instead of hanging: counters and broadcasts need Redis.
    const started = performance.now();
    await expect(b.incrementWithin('k', 1000, 0)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(b.broadcast!('tokens', 'from-b')).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(performance.now() - started).toBeLessThan(1000);

    link = await relay(target, port);
    await until('B live again', () => onB.subscription.live);
    expect(onB.messages).toEqual([undefined, undefined]);
    await a.broadcast!('tokens', 'after');
    await until('B hears A again', () => onB.messages.includes('after'));
    expect(onB.messages).not.toContain('while-b-was-down');
    expect((await b.incrementWithin('k', 1000, 0)).count).toBe(1);
  });

  it('drops malformed messages on the channel (anyone who can publish there can send them) and stays subscribed', async () => {
    prefix = uniquePrefix();
    const a = replica();
    const b = replica();
    const onA = listen(a);
    const onB = listen(b);
    await until('both subscriptions live', () => onA.subscription.live && onB.subscription.live);
    const hostile = createPlainClient({ url: REDIS_URL });
    await hostile.connect();
    cleanups.push(async () => hostile.destroy());
    // A's sender id is in every message it sends: a reader of the channel can forge "A's own" messages.
    const seen: string[] = [];
    await hostile.subscribe(`${prefix}invalidation`, (message) => seen.push(message));
    await a.broadcast!('tokens', 'first');
    await until('the forger saw a message of A', () => seen.length > 0);
    const senderOfA = (JSON.parse(seen[0]!) as { s: string }).s;
    const stale = onA.messages.filter((m) => m === undefined).length;
    for (const forged of [{ s: senderOfA, t: 'tokens', m: 'no reply channel' }, { s: senderOfA, t: 'tokens', m: 'x', r: 7 }, 'not json', '{"s":1}', 'null']) {
      await hostile.publish(`${prefix}invalidation`, typeof forged === 'string' ? forged : JSON.stringify(forged));
    }
    await a.broadcast!('tokens', 'after');
    expect(onB.messages).toContain('after');
    expect(onA.messages).toContain('after');
    // No reconnect happened: a reconnect tells every listener "everything changed" (undefined).
    expect(onA.messages.filter((m) => m === undefined)).toHaveLength(stale);
    expect(onA.messages).not.toContain('no reply channel');
    expect(onA.subscription.live).toBe(true);
  });

  it('counts a counter once across processes, each with its own inner store', async () => {
    prefix = uniquePrefix();
    const a = replica();
    const b = replica();
    const now = 1_000_000;
    expect(await a.incrementWithin('ip:1', 60_000, now)).toEqual({ count: 1, resetAt: now + 60_000 });
    expect(await b.incrementWithin('ip:1', 60_000, now + 5)).toEqual({ count: 2, resetAt: now + 60_000 });
    expect(await b.transaction((tx) => tx.incrementWithin('ip:1', 60_000, now + 6))).toEqual({ count: 3, resetAt: now + 60_000 });
    const counts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).incrementWithin('ip:1', 60_000, now + 7)));
    expect(counts.map((c) => c.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 4));
    // The window ends for both at once.
    expect(await a.incrementWithin('ip:1', 60_000, now + 60_000)).toEqual({ count: 1, resetAt: now + 120_000 });
    expect(await b.incrementWithin('ip:1', 60_000, now + 60_001)).toEqual({ count: 2, resetAt: now + 120_000 });
    // Either one purges the expired counter for both.
    expect(await a.purgeExpired(now + 120_000)).toBe(1);
    expect((await b.incrementWithin('ip:1', 60_000, now + 60_002)).count).toBe(1);
  });

  it('works on a client the caller configured, which it leaves open', async () => {
    prefix = uniquePrefix();
    const client = createPlainClient({ url: REDIS_URL });
    await client.connect();
    cleanups.push(async () => client.destroy());
    const a = withRedis(createMemoryStore(), { client, prefix });
    const b = replica();
    const onB = listen(b);
    const onA = listen(a);
    await until('both subscribed', () => onA.subscription.live && onB.subscription.live);
    await a.broadcast!('tokens', 'hello');
    expect(onB.messages).toContain('hello');
    expect((await a.incrementWithin('k', 1000, 0)).count).toBe(1);
    expect((await b.incrementWithin('k', 1000, 0)).count).toBe(2);
    await a.close();
    expect(client.isReady).toBe(true);
    expect(await client.ping()).toBe('PONG');
  });
});
