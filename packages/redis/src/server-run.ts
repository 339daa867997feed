import type { Redis } from 'ioredis';

/**
 * Which Redis server, and which of its lives as a primary, a client is talking to: its `run_id`
 * (INFO server), new at every start of a redis-server, and its `master_replid` (INFO
 * replication), new at every promotion. A restart from a snapshot (RDB/AOF) or a failover to a
 * replica keeps keys but may have lost the latest writes; so may a failback to a primary that
 * was a replica meanwhile (same process, its data taken again from the other one). Anything
 * that must notice such a rollback (the ended-sessions marker, the permission cache's versions,
 * the read-through caches' entries) qualifies its data with the run, so data written under
 * another run is never trusted as complete or current.
 */
export interface RedisServerRun {
  /** The current server's run (asked once per connection, again after a reconnection). */
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
      run ??= Promise.all([redis.info('server'), redis.info('replication')]).then(
        ([server, replication]) => {
          const id = /^run_id:(\w+)/m.exec(server)?.[1];
          const primary = /^master_replid:(\w+)/m.exec(replication)?.[1];
          return id ? [id, primary].filter(Boolean).join('.') : UNKNOWN_RUN;
        },
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
