import type { RedisClientType } from 'redis';
import { StoreUnavailableError } from '../contract.ts';

/** A node-redis client with any modules, scripts and RESP version. */
export type AnyRedisClient = RedisClientType<any, any, any, any, any>;

export interface RedisConnectionOptions {
  /** How long a command waits for a connection and for its reply before it fails (default 2 s). */
  commandTimeoutMs: number;
}

/** The two connections withRedis uses: one for commands, one that only subscribes. */
export interface RedisConnections {
  /** Runs one command; not reaching Redis fails with StoreUnavailableError, never a hang. */
  command(args: readonly string[]): Promise<unknown>;
  /** A subscribed connection can run nothing but (un)subscriptions, so pub/sub has its own. */
  subscriber(): Promise<AnyRedisClient>;
  /** Closes what withRedis opened: both connections with `url`, the subscriber only with `client`. */
  close(): Promise<void>;
}

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 5000;
const reconnectStrategy = (retries: number): number => Math.min(RECONNECT_MIN_MS * 2 ** retries, RECONNECT_MAX_MS);

/** Server replies that mean "not now" rather than "wrong command". */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/;

type RedisModule = typeof import('redis');
let loading: Promise<{ module: RedisModule; createPlainClient: (options: { url: string; disableOfflineQueue: boolean; socket: object }) => AnyRedisClient }> | undefined;

/**
 * The `redis` package is loaded on first use: it takes a few hundred milliseconds to import, which
 * every user of the service would otherwise pay whether they run Redis or not. `createClient` builds a
 * client class with every command for each call; a factory made once builds it once.
 */
function loadRedis() {
  loading ??= import('redis').then((module) => {
    const factory = module.RedisClient.factory({});
    return { module, createPlainClient: (options: { url: string; disableOfflineQueue: boolean; socket: object }) => factory(options) as AnyRedisClient };
  });
  return loading;
}

export function openRedis(target: { url: string } | { client: AnyRedisClient }, options: RedisConnectionOptions): RedisConnections {
  const owned = 'url' in target;
  // A lost connection is reported through `error` on every retry; commands fail on their own.
  const ignore = () => {};
  let everReady = false;
  const markReady = () => (everReady = true);
  let closed = false;

  const opened = loadRedis().then(({ module, createPlainClient }) => {
    // Without the offline queue a command fails at once while Redis is unreachable, as PostgreSQL's do.
    const commands = owned ? createPlainClient({ url: target.url, disableOfflineQueue: true, socket: { connectTimeout: options.commandTimeoutMs, reconnectStrategy } }) : target.client;
    // Its SUBSCRIBE must wait for the connection and be sent again after a reconnect: the offline queue stays on.
    const subscriber = commands.duplicate({ disableOfflineQueue: false, socket: { ...commands.options?.socket, reconnectStrategy } }) as AnyRedisClient;
    commands.on('error', ignore);
    subscriber.on('error', ignore);
    everReady = commands.isReady;
    commands.on('ready', markReady);
    if (!commands.isOpen && !closed) commands.connect().catch(ignore);
    return { ErrorReply: module.ErrorReply, commands, subscriber };
  });

  /** Resolves when the command connection is ready, when an attempt to connect failed, or after `ms`. */
  const settled = (commands: AnyRedisClient, ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        commands.off('ready', done);
        commands.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      commands.on('ready', done);
      commands.on('error', done);
    });

  /** One wait for the first connection, shared by every command sent meanwhile (not a listener each). */
  let firstConnection: Promise<void> | undefined;

  return {
    subscriber: async () => (await opened).subscriber,

    async command(args) {
      const { commands, ErrorReply } = await opened;
      try {
        // Only the first connection is waited for; once it was lost, commands fail at once until it is back.
        if (!everReady && !commands.isReady && commands.isOpen) await (firstConnection ??= settled(commands, options.commandTimeoutMs));
        return await commands.sendCommand(args, { timeout: options.commandTimeoutMs, rejectInFlight: true });
      } catch (error) {
        // Anything but an error reply from the server means Redis could not be reached (or answer in time).
        if (error instanceof ErrorReply && !UNAVAILABLE_REPLY.test(error.message)) throw error;
        throw new StoreUnavailableError(`Redis is unavailable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    },

    async close() {
      closed = true;
      const { commands, subscriber } = await opened;
      await shut(subscriber);
      if (owned) return shut(commands);
      commands.off('ready', markReady);
      commands.off('error', ignore);
    },
  };
}

async function shut(client: AnyRedisClient): Promise<void> {
  if (!client.isOpen) return;
  // A graceful close waits for replies that will not come while Redis is unreachable.
  if (client.isReady) await client.close().catch(() => client.destroy());
  else client.destroy();
}
