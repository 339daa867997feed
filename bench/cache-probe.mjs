// A preload (`node --import bench/cache-probe.mjs`) for `npm run bench:gateway`: counts the
// lookups in Apollo's in-memory caches of the process it is loaded into, without changing
// what they do. Apollo Server keeps parsed and validated documents in an InMemoryLRUCache
// (its document store, keyed by the SHA-256 of the operation text) and @apollo/gateway keeps
// query plans in another (its query-plan store, same key, plus the operation name when one is
// given; the project's gateway has its own, below). Each lookup is counted as a hit or a
// miss; on SIGUSR2 the counts are written as JSON to BENCH_CACHE_PROBE_FILE. Without that
// variable the probe does nothing.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const file = process.env.BENCH_CACHE_PROBE_FILE;
const require = createRequire(import.meta.url);
const HASH_KEY = /^[0-9a-f]{64}$/;

/** Every cache instance seen, in the order of its first lookup. */
const caches = [];
const byInstance = new WeakMap();

/** Counts one lookup in `cache` (called `name` from its first) that found `value`. */
function count(cache, name, key, value) {
  let stats = byInstance.get(cache);
  if (!stats) {
    stats = { cache: name, gets: 0, hits: 0, misses: 0, missedKeys: new Set() };
    byInstance.set(cache, stats);
    caches.push(stats);
  }
  stats.gets++;
  if (value === undefined) {
    stats.misses++;
    stats.missedKeys.add(key);
  } else stats.hits++;
}

/** Counts the lookups of the InMemoryLRUCache that `owner` (a package) resolves to. */
function probe(owner, role) {
  let path;
  try {
    path = require.resolve('@apollo/utils.keyvaluecache', {
      paths: [dirname(require.resolve(owner))],
    });
  } catch {
    return; // not installed beside this process
  }
  const { InMemoryLRUCache } = require(path);
  const proto = InMemoryLRUCache.prototype;
  if (proto.__benchProbe) return;
  proto.__benchProbe = true;
  const original = proto.get;
  // The original is `async get(key) { return this.cache.get(key) }`: the same, counted.
  proto.get = async function get(key) {
    const value = this.cache?.get ? this.cache.get(key) : await original.call(this, key);
    count(this, HASH_KEY.test(key) ? role : `other cache of ${owner}`, key, value);
    return value;
  };
}

/**
 * The project's gateway keeps what a text needs (operation, plan, result shape) in an
 * lru-cache `LRUCache` of its own, keyed by the text's SHA-256, a newline and the operation
 * name (gateway/src/execution/federation-gateway.ts); its lookups are counted the same way.
 * Loaded as ESM, as the gateway's bundle loads it, so that it is the same class.
 */
async function probePreparedOperations() {
  let LRUCache;
  try {
    ({ LRUCache } = await import('lru-cache'));
  } catch {
    return;
  }
  const proto = LRUCache.prototype;
  if (proto.__benchProbe) return;
  proto.__benchProbe = true;
  const original = proto.get;
  const KEY = /^[0-9a-f]{64}\n/;
  proto.get = function get(key, options) {
    const value = original.call(this, key, options);
    if (typeof key === 'string' && KEY.test(key))
      count(this, "project gateway's prepared operations (plan + result shape)", key, value);
    return value;
  };
}

if (file) {
  probe('@apollo/server', 'Apollo Server document store (parsed + validated documents)');
  probe('@apollo/gateway', '@apollo/gateway query-plan store');
  await probePreparedOperations();
  process.on('SIGUSR2', () => {
    writeFileSync(
      file,
      JSON.stringify({
        pid: process.pid,
        caches: caches.map(({ missedKeys, ...stats }) => ({
          ...stats,
          distinctMissedKeys: missedKeys.size,
        })),
      }),
    );
  });
}
