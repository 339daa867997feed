import {
  APPS,
  appEnvironment,
  freePort,
  startAppProcess,
  waitUntilUp,
  type AppPorts,
  type AppProcess,
} from '@platform/apps';
import { DEFAULT_PORTS, type AppName } from '@platform/config';
import type { TestRun } from './test-run';

export interface AppCluster {
  readonly ports: AppPorts;
  /** `http://127.0.0.1:<port>` of the gateway or a subgraph. */
  httpUrl(name: AppName): string;
  /** `127.0.0.1:<port>` of a gRPC service. */
  grpcAddress(name: AppName): string;
  /** Everything an app printed so far (for failure messages). */
  logs(name: AppName): string[];
  /** The process id of a running app. */
  pid(name: AppName): number | undefined;
  /** Starts (or restarts) an app; `env` adds to what the cluster gave it. */
  start(name: AppName, env?: Record<string, string>): Promise<void>;
  stop(name: AppName): Promise<void>;
  stopAll(): Promise<void>;
}

/**
 * Starts apps of the platform as real processes (their built bundles) on free ports, wired
 * to each other and to the run's isolated database, Redis prefix and exchange.
 */
export async function startApps(
  run: TestRun,
  names: readonly AppName[],
  extraEnv: Partial<Record<AppName, Record<string, string>>> = {},
  options: {
    nodeArgs?: readonly string[];
    /**
     * Another cluster on the same run: the apps started here are more instances beside it,
     * wired to its services and to its subgraphs except the ones started here.
     */
    alongside?: AppCluster;
  } = {},
): Promise<AppCluster> {
  const ports = { ...DEFAULT_PORTS } as Record<AppName, number>;
  for (const app of APPS)
    ports[app.name] =
      options.alongside && !names.includes(app.name)
        ? options.alongside.ports[app.name]
        : await freePort();
  const running = new Map<AppName, AppProcess>();
  const output = new Map<AppName, string[]>();

  async function start(name: AppName, env: Record<string, string> = {}): Promise<void> {
    const app = APPS.find((candidate) => candidate.name === name);
    if (!app) throw new Error(`unknown app ${name}`);
    const lines = output.get(name) ?? [];
    output.set(name, lines);
    const child = startAppProcess({
      app,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...run.env,
        ...appEnvironment(app, ports),
        ...(app.kind === 'gateway' ? { GATEWAY_HOST: '127.0.0.1' } : {}),
        ...extraEnv[name],
        ...env,
      },
      nodeArgs: options.nodeArgs,
      onLine: (line) => lines.push(line),
    });
    running.set(name, child);
    let exit: Error | undefined;
    void child.exited.then(({ code, signal }) => {
      exit = new Error(
        `${name} exited (${signal ?? code}) while starting:\n${lines.slice(-20).join('\n')}`,
      );
    });
    await waitUntilUp(app, ports[name], { timeoutMs: 30_000, failed: () => exit });
  }

  async function stopAll(): Promise<void> {
    for (const name of [...running.keys()].toReversed()) {
      await running.get(name)?.stop();
      running.delete(name);
    }
  }

  const services = names.filter((name) => name.endsWith('-service'));
  const subgraphs = names.filter((name) => name.endsWith('-subgraph'));
  const rest = names.filter((name) => !services.includes(name) && !subgraphs.includes(name));
  try {
    for (const stage of [services, subgraphs, rest])
      await Promise.all(stage.map((name) => start(name)));
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    ports,
    httpUrl: (name) => `http://127.0.0.1:${ports[name]}`,
    grpcAddress: (name) => `127.0.0.1:${ports[name]}`,
    logs: (name) => output.get(name) ?? [],
    pid: (name) => running.get(name)?.child.pid,
    start,
    async stop(name) {
      await running.get(name)?.stop();
      running.delete(name);
    },
    stopAll,
  };
}
