import type { Redis } from 'ioredis';

/**
 * Which Redis server process a client is talking to: its `run_id` (INFO server), new at every
 * start of a redis-server. A restart from a snapshot (RDB/AOF) or a failover to a replica keeps
 * keys but may have lost the latest writes; anything that must notice such a rollback (the
 * ended-sessions marker, the permission cache's versions, the read-through caches' entries)
 * qualifies its data with the run, so data written under another run is never trusted as
 * complete or current. Not noticed: a failback to a primary that was a replica in between (the
 * same process, its data taken again from the other one); see docs/operations.md.
 */
export interface RedisServerRun {
  /** The current server's run id (asked once per connection, again after a reconnection). */
  current(): Promise<string>;
}

const runs = new WeakMap<Redis, RedisServerRun>();

/** The run tracker of a client: one per client, forgetting the run at every (re)connection. */
export function serverRunOf(redis: Redis): RedisServerRun {
  const known = runs.get(redis);
  if (known) return known;
  let run: Promise<string> | undefined;
  const forget = () => {
    run = undefined;
  };
  redis.on('ready', forget);
  redis.on('close', forget);
  const tracker: RedisServerRun = {
    current() {
      run ??= redis.info('server').then(
        (info) => /^run_id:(\w+)/m.exec(info)?.[1] ?? UNKNOWN_RUN,
        (error: unknown) => {
          // A server that refuses INFO (some managed offerings rename it) cannot say: the data
          // is then only as safe as a Redis without persistence or failover. Kept until the
          // next connection, as a run would be.
          if (error instanceof Error && /^ERR /.test(error.message)) return UNKNOWN_RUN;
          run = undefined;
          throw error;
        },
      );
      return run;
    },
  };
  runs.set(redis, tracker);
  return tracker;
}

const UNKNOWN_RUN = 'unknown';
