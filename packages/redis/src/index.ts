export { createRedis, type Redis, type RedisOptions } from './redis';
