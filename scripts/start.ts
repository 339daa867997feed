// `npm start`: the whole backend on this machine. Checks PostgreSQL/Redis/RabbitMQ, builds
// what is missing, creates the database and applies migrations, starts the eight apps with
// their logs prefixed by name, waits for the gateway's /ready and prints its URL.
// `npm start -- --replicas 2` (or `REPLICAS=2`) starts that many instances of every app, each
// on its own ports, every caller given all instances of what it calls.
// If any app dies, it says which and why and stops the others (no restarts: a crash is a
// bug to see, not to hide). SIGINT/SIGTERM stop every app, gateway first.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  APPS,
  appEnvironment,
  freePort,
  MAX_REPLICAS,
  METRICS_PORT_VARIABLE,
  replicaPorts,
  startAppProcess,
  waitUntilUp,
  type AppPorts,
  type AppProcess,
} from '@platform/apps';
import {
  DEFAULT_PORTS,
  databaseEnv,
  loadEnv,
  port,
  rabbitEnv,
  redisEnv,
  type AppName,
} from '@platform/config';
import { applyMigrations, createDatabaseIfMissing, MIGRATIONS } from '@platform/db/migrate';
import { findUnreachableDependencies } from './dependencies';
import { formatLogLine } from './log-format';

/** `--replicas N` / `--replicas=N`, if given. */
function replicasArgument(args: readonly string[]): string | undefined {
  for (const [index, arg] of args.entries()) {
    if (arg === '--replicas') return args[index + 1] ?? '';
    if (arg.startsWith('--replicas=')) return arg.slice('--replicas='.length);
  }
  return undefined;
}
const replicasFlag = replicasArgument(process.argv.slice(2));
if (replicasFlag !== undefined) process.env['REPLICAS'] = replicasFlag;

const env = loadEnv({
  ...databaseEnv,
  ...redisEnv,
  ...rabbitEnv,
  GATEWAY_PORT: port(DEFAULT_PORTS.gateway),
  INTERNAL_TOKEN: z.string().min(32).optional(),
  START_TIMEOUT_MS: z.coerce.number().int().positive().default(90_000),
  /** `free`: internal apps listen on ports the OS picks (several stacks on one machine). */
  INTERNAL_PORTS: z.enum(['default', 'free']).default('default'),
  /** Skip the build step (when the caller has just built, as the end-to-end tests do). */
  START_SKIP_BUILD: z.enum(['true', 'false']).default('false'),
  /** Instances of every app (`--replicas N` on the command line wins). */
  REPLICAS: z.coerce.number().int().min(1).max(MAX_REPLICAS).default(1),
});

const say = (message: string) => process.stdout.write(`[start] ${message}\n`);
const fail = (message: string): never => {
  process.stderr.write(`[start] ${message}\n`);
  process.exit(1);
};

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.status !== 0) fail(`\`${command} ${args.join(' ')}\` failed`);
}

const problems = await findUnreachableDependencies({
  databaseUrl: env.DATABASE_URL,
  redisUrl: env.REDIS_URL,
  rabbitmqUrl: env.RABBITMQ_URL,
});
if (problems.length > 0) {
  for (const problem of problems) {
    process.stderr.write(
      `[start] ${problem.name} is not reachable at ${problem.address} (${problem.reason}).\n`,
    );
    process.stderr.write(`        To fix: ${problem.howToStart}.\n`);
  }
  process.exit(1);
}

if (env.START_SKIP_BUILD === 'false') {
  say('generating and building what is missing (cached by Nx)');
  run(fileURLToPath(new URL('../node_modules/.bin/nx', import.meta.url)), [
    'run-many',
    '-t',
    'build',
    '--outputStyle=static',
  ]);
}

if (await createDatabaseIfMissing(env.DATABASE_URL))
  say(`created database ${new URL(env.DATABASE_URL).pathname.slice(1)}`);
const applied = await applyMigrations({ databaseUrl: env.DATABASE_URL, ...MIGRATIONS });
say(
  applied.length > 0
    ? `applied migrations: ${applied.join(', ')}`
    : 'database schema is up to date',
);

const replicas = env.REPLICAS;
const ports: AppPorts = { ...DEFAULT_PORTS, gateway: env.GATEWAY_PORT };
// Every instance's port and /metrics port, by app (instance 0 first): the defaults
// + 100 × n for instance n, or free ports.
const { instancePorts, metricsPorts } = await replicaPorts({
  replicas,
  ports,
  free: env.INTERNAL_PORTS === 'free',
  freePort,
});
for (const app of APPS) ports[app.name] = instancePorts[app.name][0] ?? ports[app.name];
const internalToken = env.INTERNAL_TOKEN ?? randomBytes(32).toString('base64url');
const running: AppProcess[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  stopping = true;
  // Reverse order of start: the gateway stops taking requests before what it calls goes away.
  for (const app of running.toReversed()) await app.stop();
  process.exit(code);
}

process.once('SIGINT', () => void stopAll(0));
process.once('SIGTERM', () => void stopAll(0));

const label = (app: AppName, n: number) => (replicas > 1 ? `${app}#${n}` : app);
const width = Math.max(...APPS.map((app) => label(app.name, replicas - 1).length));
// The services first (a subgraph calls them as it starts: the users subgraph creates the
// bootstrap admin); the gateway calls nothing as it starts, so it starts beside the subgraphs.
const stages: (typeof APPS)[number]['kind'][][] = [['service'], ['subgraph', 'gateway']];
for (const stage of stages) {
  const started = APPS.filter((app) => stage.includes(app.kind)).flatMap((app) =>
    instancePorts[app.name].map((instancePort, n) => {
      const name = label(app.name, n);
      const metricsPort = metricsPorts[app.name][n];
      const tail: string[] = [];
      const child = startAppProcess({
        app,
        env: {
          ...(process.env as Record<string, string>),
          ...appEnvironment(app, ports, instancePorts),
          [app.portVariable]: String(instancePort),
          ...(metricsPort === undefined ? {} : { [METRICS_PORT_VARIABLE]: String(metricsPort) }),
          INTERNAL_TOKEN: internalToken,
        },
        onLine: (line) => {
          tail.push(line);
          if (tail.length > 20) tail.shift();
          process.stdout.write(`${name.padEnd(width)} | ${formatLogLine(line)}\n`);
        },
      });
      let death: Error | undefined;
      void child.exited.then(({ code, signal }) => {
        death = new Error(`${name} exited (${signal ?? `code ${code}`})`);
        if (stopping) return;
        process.stderr.write(
          `[start] ${name} exited unexpectedly (${signal ?? `code ${code}`}); its last lines:\n`,
        );
        for (const line of tail.slice(-5)) process.stderr.write(`        ${formatLogLine(line)}\n`);
        process.stderr.write('[start] stopping the other apps\n');
        void stopAll(1);
      });
      running.push(child);
      return waitUntilUp(app, instancePort, {
        timeoutMs: env.START_TIMEOUT_MS,
        failed: () => death,
      });
    }),
  );
  try {
    await Promise.all(started);
  } catch (error) {
    if (!stopping) {
      process.stderr.write(`[start] ${(error as Error).message}\n`);
      await stopAll(1);
    }
    await new Promise(() => undefined); // stopAll exits
  }
}

const gatewayUrls = instancePorts.gateway.map((gatewayPort) => `http://localhost:${gatewayPort}`);
const deadline = Date.now() + env.START_TIMEOUT_MS;
for (const gatewayUrl of gatewayUrls) {
  for (;;) {
    const response = await fetch(`${gatewayUrl}/ready`).catch(() => undefined);
    if (response?.status === 200) break;
    if (Date.now() > deadline) {
      process.stderr.write(
        `[start] gateway ${gatewayUrl} not ready: ${response ? await response.text() : 'no answer'}\n`,
      );
      await stopAll(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
if (replicas > 1)
  say(
    `${replicas} instances of every app; gateways ready at ${gatewayUrls.map((url) => `${url}/graphql`).join(', ')}  (Ctrl-C stops everything)`,
  );
else say(`gateway ready at ${gatewayUrls[0]}/graphql  (Ctrl-C stops everything)`);
