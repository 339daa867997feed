export { createRedis, type Redis, type RedisOptions } from './redis';
export { serverRunOf, type RedisServerRun } from './server-run';
