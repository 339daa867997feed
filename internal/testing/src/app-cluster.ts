import {
  APPS,
  appEnvironment,
  freePort,
  METRICS_PORT_VARIABLE,
  startAppProcess,
  waitUntilUp,
  type AppPorts,
  type AppProcess,
} from '@platform/apps';
import { DEFAULT_PORTS, type AppName } from '@platform/config';
import type { TestRun } from './test-run';

export interface AppCluster {
  /** The port of each app's first instance. */
  readonly ports: AppPorts;
  /** Every instance's port, by app (the first is `ports[app]`). */
  readonly instancePorts: Readonly<Record<AppName, readonly number[]>>;
  /** `http://127.0.0.1:<port>` of the gateway or a subgraph (its first instance by default). */
  httpUrl(name: AppName, instance?: number): string;
  /** `http://127.0.0.1:<port>/metrics` of an instance's Prometheus endpoint (first by default). */
  metricsUrl(name: AppName, instance?: number): string;
  /** `127.0.0.1:<port>` of a gRPC service (its first instance by default). */
  grpcAddress(name: AppName, instance?: number): string;
  /** How many instances of the app this cluster runs. */
  instances(name: AppName): number;
  /** Everything an instance printed so far (for failure messages). */
  logs(name: AppName, instance?: number): string[];
  /** The process id of a running instance. */
  pid(name: AppName, instance?: number): number | undefined;
  /** Resolves with how the instance's current process ended (undefined if none runs). */
  exited(
    name: AppName,
    instance?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  /** Starts (or restarts) an instance; `env` adds to what the cluster gave it. */
  start(name: AppName, env?: Record<string, string>, instance?: number): Promise<void>;
  /** SIGTERM (then SIGKILL after the grace period); resolves once the instance ended. */
  stop(name: AppName, instance?: number): Promise<void>;
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
    /**
     * Instances per app (a number for every app started here, or per app; default 1). Every
     * app's address variable lists all instances of the apps it calls (client-side
     * balancing); each instance has its own port.
     */
    instances?: number | Partial<Record<AppName, number>>;
    /** How long each instance may take to come up (default 30 s; more on a loaded machine). */
    startTimeoutMs?: number;
  } = {},
): Promise<AppCluster> {
  const count = (name: AppName) =>
    typeof options.instances === 'number' ? options.instances : (options.instances?.[name] ?? 1);
  const ports = { ...DEFAULT_PORTS } as Record<AppName, number>;
  const instancePorts = {} as Record<AppName, number[]>;
  for (const app of APPS) {
    if (options.alongside && !names.includes(app.name)) {
      instancePorts[app.name] = [...options.alongside.instancePorts[app.name]];
    } else {
      instancePorts[app.name] = [];
      for (let n = 0; n < count(app.name); n++) instancePorts[app.name].push(await freePort());
    }
    ports[app.name] = instancePorts[app.name][0] ?? ports[app.name];
  }
  const key = (name: AppName, instance: number) => `${name}#${instance}`;
  // Each instance's /metrics port (METRICS_PORT), free, kept across its restarts.
  const metricsPorts = new Map<string, number>();
  async function metricsPortOf(name: AppName, instance: number): Promise<number> {
    let port = metricsPorts.get(key(name, instance));
    if (port === undefined) {
      port = await freePort();
      metricsPorts.set(key(name, instance), port);
    }
    return port;
  }
  const running = new Map<string, AppProcess>();
  const output = new Map<string, string[]>();

  function portOf(name: AppName, instance: number): number {
    const port = instancePorts[name][instance];
    if (port === undefined) throw new Error(`${name} has no instance ${instance}`);
    return port;
  }

  async function start(
    name: AppName,
    env: Record<string, string> = {},
    instance = 0,
  ): Promise<void> {
    const app = APPS.find((candidate) => candidate.name === name);
    if (!app) throw new Error(`unknown app ${name}`);
    const port = portOf(name, instance);
    const lines = output.get(key(name, instance)) ?? [];
    output.set(key(name, instance), lines);
    const child = startAppProcess({
      app,
      env: {
        PATH: process.env['PATH'] ?? '',
        ...run.env,
        ...appEnvironment(app, ports, instancePorts),
        [app.portVariable]: String(port),
        [METRICS_PORT_VARIABLE]: String(await metricsPortOf(name, instance)),
        ...(app.kind === 'gateway' ? { GATEWAY_HOST: '127.0.0.1' } : {}),
        ...extraEnv[name],
        ...env,
      },
      nodeArgs: options.nodeArgs,
      onLine: (line) => lines.push(line),
    });
    running.set(key(name, instance), child);
    let exit: Error | undefined;
    void child.exited.then(({ code, signal }) => {
      exit = new Error(
        `${name}#${instance} exited (${signal ?? code}) while starting:\n${lines.slice(-20).join('\n')}`,
      );
    });
    await waitUntilUp(app, port, {
      timeoutMs: options.startTimeoutMs ?? 30_000,
      failed: () => exit,
    });
  }

  async function stop(name: AppName, instance = 0): Promise<void> {
    await running.get(key(name, instance))?.stop();
    running.delete(key(name, instance));
  }

  /**
   * Stops callers before their callees, stage by stage (the gateway and other apps, then the
   * subgraphs, then the services), and the instances of one stage at once: each HTTP app
   * waits out its idle grace (about a second) on the way down, and one after another they
   * added seconds to every test file.
   */
  async function stopAll(): Promise<void> {
    const stageOf = (id: string) =>
      id.includes('-service#') ? 2 : id.includes('-subgraph#') ? 1 : 0;
    for (const stage of [0, 1, 2])
      await Promise.all(
        [...running.keys()]
          .filter((id) => stageOf(id) === stage)
          .map(async (id) => {
            await running.get(id)?.stop();
            running.delete(id);
          }),
      );
  }

  /**
   * Starts an instance, once more if it did not come up: on a loaded machine a start can
   * overrun a timeout (a seed transaction, the wait for the health check).
   */
  async function startWithRetry(name: AppName, instance: number): Promise<void> {
    try {
      await start(name, {}, instance);
    } catch {
      await stop(name, instance);
      await start(name, {}, instance);
    }
  }

  // The services first: a subgraph calls them as it starts (the users subgraph creates the
  // bootstrap admin). The gateway calls nothing as it starts (its supergraph is a file), so it
  // starts beside the subgraphs: their starts are CPU-bound, and one process alone leaves a core
  // idle.
  const services = names.filter((name) => name.endsWith('-service'));
  const rest = names.filter((name) => !services.includes(name));
  try {
    // Stage by stage (callees first); within a stage, one instance of each app at a time, so
    // a loaded machine is not asked to start every process at once.
    for (const stage of [services, rest]) {
      const most = Math.max(0, ...stage.map((name) => instancePorts[name].length));
      for (let instance = 0; instance < most; instance++)
        await Promise.all(
          stage
            .filter((name) => instance < instancePorts[name].length)
            .map((name) => startWithRetry(name, instance)),
        );
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  return {
    ports,
    instancePorts,
    httpUrl: (name, instance = 0) => `http://127.0.0.1:${portOf(name, instance)}`,
    metricsUrl: (name, instance = 0) => {
      const port = metricsPorts.get(key(name, instance));
      if (port === undefined) throw new Error(`${name}#${instance} was never started`);
      return `http://127.0.0.1:${port}/metrics`;
    },
    grpcAddress: (name, instance = 0) => `127.0.0.1:${portOf(name, instance)}`,
    instances: (name) => instancePorts[name].length,
    logs: (name, instance = 0) => output.get(key(name, instance)) ?? [],
    pid: (name, instance = 0) => running.get(key(name, instance))?.child.pid,
    exited: (name, instance = 0) => running.get(key(name, instance))?.exited,
    start,
    stop,
    stopAll,
  };
}
