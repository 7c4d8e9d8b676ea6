export { withRedis, type WithRedisOptions } from './with-redis.ts';
export type { AnyRedisClient } from './connection.ts';
