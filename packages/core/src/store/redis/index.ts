/** Rate-limit counters and cache invalidation in Redis, around any store; needs `redis` (6). */
export { withRedis, type WithRedisOptions } from './with-redis.ts';
export type { AnyRedisClient } from './connection.ts';
