export { watchKey, type KeyWatch, type KeyWatchOptions } from './key-watch';
export { createRedis, type Redis, type RedisOptions } from './redis';
export { serverRunOf, type RedisServerRun } from './server-run';
export {
  createReadThroughCache,
  type ReadThroughCache,
  type ReadThroughCacheOptions,
} from './read-through-cache';
export { createSlidingWindows, type SlidingWindow, type SlidingWindows } from './sliding-windows';
