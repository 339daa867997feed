import type { AppName } from '@platform/config';
import {
  createTcpProxy,
  createTestRun,
  eventually,
  startApps,
  startRedisServer,
  type AppCluster,
  type TcpProxy,
  type TestRedisServer,
  type TestRun,
} from '@platform/testing';
import { signIn, type SignedIn } from '../graphql.client';
import { ADMIN } from '../platform.harness';

/** The apps a second instance of is started when the profile asks for two. */
export const SCALED_APPS: readonly AppName[] = [
  'permission-service',
  'users-subgraph',
  'rbac-subgraph',
  'notifications-subgraph',
  'gateway',
];

export interface ChaosPlatform {
  run: TestRun;
  /** The suite's own redis-server (behind `proxies.redis`). */
  redis: TestRedisServer;
  /** Every app reaches PostgreSQL, Redis and RabbitMQ only through these. */
  proxies: { postgres: TcpProxy; redis: TcpProxy; rabbitmq: TcpProxy };
  /** The clusters the apps were started in (a few at a time, all on one set of ports). */
  clusters: AppCluster[];
  /** The base URL of each gateway instance. */
  gateways: string[];
  admin: SignedIn;
  /** The base URL of every instance of a subgraph or the gateway. */
  httpUrls(name: AppName): string[];
  /** `<app>#<instance>` → the port it listens on (gRPC or HTTP). */
  ports(): Record<string, number>;
  /** `<app>#<instance>` → process id, of every app process. */
  pids(): Record<string, number | undefined>;
  /** Each app process's output so far, by `<app>#<instance>`. */
  logs(): Record<string, string[]>;
  stop(): Promise<void>;
}

function viaProxy(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}

/**
 * The whole stack as processes on an isolated run, wired to PostgreSQL, RabbitMQ and a
 * redis-server of its own through TCP proxies a test can cut. The machine's shared servers
 * are only ever reached through the proxies (and by the run's own setup and cleanup).
 */
export async function startChaosPlatform(options: {
  instances: 1 | 2;
  env?: Partial<Record<AppName, Record<string, string>>>;
}): Promise<ChaosPlatform> {
  const run = await createTestRun();
  const cleanup: (() => Promise<void>)[] = [() => run.close()];
  const stop = async () => {
    for (const step of cleanup.toReversed()) await step().catch(() => undefined);
  };
  try {
    const redis = await startRedisServer();
    cleanup.push(() => redis.stop());
    const target = (url: string) => ({
      host: new URL(url).hostname,
      port: Number(new URL(url).port),
    });
    const proxies = {
      postgres: await createTcpProxy(target(run.databaseUrl)),
      redis: await createTcpProxy({ host: '127.0.0.1', port: redis.port }),
      rabbitmq: await createTcpProxy({
        ...target(run.rabbitmqUrl),
        port: Number(new URL(run.rabbitmqUrl).port || 5672),
      }),
    };
    cleanup.push(async () => {
      for (const proxy of Object.values(proxies)) await proxy.close();
    });
    const proxied: TestRun = {
      ...run,
      databaseUrl: viaProxy(run.databaseUrl, proxies.postgres.port),
      redisUrl: `redis://127.0.0.1:${proxies.redis.port}`,
      rabbitmqUrl: viaProxy(run.rabbitmqUrl, proxies.rabbitmq.port),
      env: {
        ...run.env,
        DATABASE_URL: viaProxy(run.databaseUrl, proxies.postgres.port),
        REDIS_URL: `redis://127.0.0.1:${proxies.redis.port}`,
        RABBITMQ_URL: viaProxy(run.rabbitmqUrl, proxies.rabbitmq.port),
      },
    };
    const env = {
      ...options.env,
      'users-subgraph': {
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        RATE_LIMIT_PER_ADDRESS: '0',
        ...options.env?.['users-subgraph'],
      },
    };
    const clusters: AppCluster[] = [];
    cleanup.push(async () => {
      for (const cluster of clusters.toReversed()) await cluster.stopAll();
    });
    /** Which cluster runs `<app>#<instance>`. */
    const placement = new Map<string, { name: AppName; cluster: AppCluster }>();
    /**
     * A few apps at a time (on a loaded machine eight at once miss the start timeout), each
     * stage beside the one before so that they share one set of ports; a stage that does not
     * come up is tried once more.
     */
    const stage = async (names: readonly AppName[], instance: number, alongside?: AppCluster) => {
      let cluster: AppCluster;
      try {
        cluster = await startApps(proxied, names, env, { alongside });
      } catch (error) {
        if (!/did not come up/.test(String(error))) throw error;
        cluster = await startApps(proxied, names, env, { alongside });
      }
      clusters.push(cluster);
      for (const name of names) placement.set(`${name}#${instance}`, { name, cluster });
      return cluster;
    };
    let last = await stage(['user-service', 'auth-service'], 0);
    last = await stage(['permission-service', 'notification-service'], 0, last);
    last = await stage(['users-subgraph', 'rbac-subgraph', 'notifications-subgraph'], 0, last);
    const first = await stage(['gateway'], 0, last);
    const gateways = [first.httpUrl('gateway')];
    if (options.instances === 2) {
      const second = await stage(SCALED_APPS, 1, first);
      gateways.push(second.httpUrl('gateway'));
    }
    const admin = await eventually(() => signIn(gateways[0]!, ADMIN.email, ADMIN.password), 30_000);
    const byApp = <T>(read: (cluster: AppCluster, name: AppName) => T) =>
      Object.fromEntries(
        [...placement].map(([key, { name, cluster }]) => [key, read(cluster, name)]),
      );

    return {
      run,
      redis,
      proxies,
      clusters,
      gateways,
      admin,
      httpUrls: (app) =>
        [...placement.values()]
          .filter(({ name }) => name === app)
          .map(({ cluster }) => cluster.httpUrl(app)),
      ports: () => byApp((cluster, name) => cluster.ports[name]),
      pids: () => byApp((cluster, name) => cluster.pid(name)),
      logs: () => byApp((cluster, name) => cluster.logs(name)),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Whether a process with this id is alive. */
export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
