export { watchKey, type KeyWatch, type KeyWatchOptions } from './key-watch';
export { createRedis, type Redis, type RedisOptions } from './redis';
export { serverRunOf, type RedisServerRun } from './server-run';
