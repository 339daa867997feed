// `npm run bench:gateway`: three page queries through the project's gateway and, in the same
// run and interleaved by round, through stock @apollo/gateway (bench/stock-gateway.ts), Hive
// Gateway without and with its upstream in-flight deduplication (bench/peers), and, for Q1,
// the users subgraph called directly. The whole stack runs as processes on an isolated
// database with seeded users, roles and notifications. Each measurement: BENCH_WARMUP s
// unrecorded, then BENCH_DURATION s with autocannon at 50 connections, every request with
// another user's token (no gateway can merge identical requests) and every response checked.
// Prints req/s, p50, p99, errors and the CPU ms per request of every process (from
// /proc/<pid>/stat), the medians of BENCH_ROUNDS rounds, the ratios between the gateways, and
// whether the query-plan and document caches were hit. Figures go to docs/benchmarks.md.
//
// Knobs: BENCH_DURATION (10), BENCH_WARMUP (3), BENCH_ROUNDS (3), BENCH_PRIME (5: s of every
// query through every target before the first round, unmeasured), BENCH_QUERIES (Q1,Q2,Q3),
// BENCH_TARGETS (project,stock,hive,hive-dedupe,subgraph; also baseline: another build of the
// project's gateway, from BENCH_BASELINE_GATEWAY, see startTargets), BENCH_NODE_ARGS (given to every
// app's node, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_STOCK_NODE_ARGS (the same for
// the stock peer, to profile both gateways in one run), BENCH_BASELINE_NODE_ARGS (flags for the
// baseline gateway only: a flag measured side by side on the same build), BENCH_NODE_ENV (production: every
// app and the stock peer run as deployed, e.g. graphql-js without its development-mode checks;
// `test` measures what the test suites run).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { APP_NAMES, APPS, appEnvironment, METRICS_PORT_VARIABLE } from '@platform/apps';
import { createGrpcClient, INTERNAL_TOKEN_HEADER } from '@platform/grpc';
import { notificationV1, permissionV1 } from '@platform/proto';
import {
  createTestRun,
  eventually,
  freePort,
  startApps,
  startTestSmtpServer,
  type AppCluster,
} from '@platform/testing';
import { gatewayClient } from './gateway.client';
import { ensurePeersInstalled, peerNodeVersion, startHiveGateway } from './peers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CONNECTIONS = 50;
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 3);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const PRIME = Number(process.env['BENCH_PRIME'] ?? 5);
const USERS = 200;
const ADMINS = 60;
const NOTIFICATIONS_PER_USER = 20;
const PASSWORD = 'benchmark passphrase 42';
const NODE_ARGS = process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
const STOCK_NODE_ARGS = process.env['BENCH_STOCK_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
const BASELINE_NODE_ARGS =
  process.env['BENCH_BASELINE_NODE_ARGS']?.split(' ').filter(Boolean) ?? [];
const PROBE = fileURLToPath(new URL('./cache-probe.mjs', import.meta.url));
const NODE_ENV = process.env['BENCH_NODE_ENV'] ?? 'production';

// ---------------------------------------------------------------------------------------
// The queries and what a correct answer holds.

type QueryName = 'Q1' | 'Q2' | 'Q3';
type Data = Record<string, unknown>;
interface Query {
  name: QueryName;
  text: string;
  /** Whose tokens: regular users, or admins (Q3 lists users and reads their roles). */
  as: 'users' | 'admins';
  /** Whether `data` is a complete answer. */
  valid(data: Data): boolean;
}
interface Edge<T> {
  node: T;
}

const QUERIES: Query[] = [
  {
    name: 'Q1',
    text: '{ me { id email displayName } }',
    as: 'users',
    valid: (data) => typeof (data['me'] as { email?: unknown } | null)?.email === 'string',
  },
  {
    name: 'Q2',
    text: '{ me { id email roles { role { name } } permissions unreadNotificationCount notifications(first: 5) { totalCount edges { node { id title } } } } }',
    as: 'users',
    valid: (data) => {
      const me = data['me'] as {
        roles?: unknown[];
        permissions?: unknown[];
        unreadNotificationCount?: unknown;
        notifications?: { totalCount: number; edges: unknown[] };
      } | null;
      return (
        !!me &&
        (me.roles?.length ?? 0) > 0 &&
        Array.isArray(me.permissions) &&
        typeof me.unreadNotificationCount === 'number' &&
        (me.notifications?.totalCount ?? 0) >= NOTIFICATIONS_PER_USER &&
        me.notifications?.edges.length === 5
      );
    },
  },
  {
    name: 'Q3',
    text: '{ users(first: 20) { edges { node { id email roles { role { name } } } } } }',
    as: 'admins',
    valid: (data) => {
      const edges = (data['users'] as { edges: Edge<{ roles?: unknown[] }>[] } | null)?.edges;
      return edges?.length === 20 && edges.every((edge) => (edge.node.roles?.length ?? 0) > 0);
    },
  },
];
const queries = QUERIES.filter((query) =>
  (process.env['BENCH_QUERIES'] ?? 'Q1,Q2,Q3').split(',').includes(query.name),
);

// ---------------------------------------------------------------------------------------
// The stack, the seed data, the peers.

const loadBefore = loadavg();
const run = await createTestRun();
const probeDir = mkdtempSync(join(tmpdir(), 'bench-gateway-'));
// Production needs a mail transport (a sink here: registration mails go to it), a key sealing
// TOTP secrets and the WebAuthn relying party; the apps refuse to start without them.
const smtp = NODE_ENV === 'production' ? await startTestSmtpServer() : undefined;
const quiet: Record<string, string> = {
  LOG_LEVEL: 'warn',
  NODE_ENV,
  ...(smtp
    ? {
        SMTP_URL: smtp.url,
        MFA_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
        WEBAUTHN_RP_ID: 'localhost',
        WEBAUTHN_ORIGINS: 'http://localhost',
      }
    : {}),
};
const probed = (name: string) => ({
  ...quiet,
  BENCH_CACHE_PROBE_FILE: join(probeDir, `${name}.json`),
});
const peers: ChildProcess[] = [];
// PostgreSQL's own view of which backends serve this run's database (for their CPU).
const adminUrl = new URL(run.databaseUrl);
adminUrl.pathname = '/postgres';
const admin = new pg.Client({ connectionString: adminUrl.toString() });

async function main(): Promise<void> {
  const graphql = gatewayClient(apps.httpUrl('gateway'));
  const internal = { internalToken: run.internalToken };
  const permissions = createGrpcClient(permissionV1.PermissionServiceService, {
    ...internal,
    address: apps.grpcAddress('permission-service'),
  });
  const notifications = createGrpcClient(notificationV1.NotificationServiceService, {
    ...internal,
    address: apps.grpcAddress('notification-service'),
  });

  // Users (registered through the gateway: real sessions and tokens), then admins.
  const register = async (prefix: string, count: number) => {
    const registered: { id: string; token: string }[] = [];
    for (let start = 0; start < count; start += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, count - start) }, (_, offset) =>
          graphql<{ register: { accessToken: string; user: { id: string } } }>(
            'mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }',
            {
              input: {
                email: `${prefix}-${start + offset}@example.com`,
                password: PASSWORD,
                displayName: `${prefix} ${start + offset}`,
              },
            },
          ),
        ),
      );
      registered.push(
        ...batch.map((r) => ({ id: r.register.user.id, token: r.register.accessToken })),
      );
    }
    return registered;
  };
  const seedStarted = performance.now();
  const users = await register('gw-bench-user', USERS);
  const admins = await register('gw-bench-admin', ADMINS);

  // Roles: four, two inheriting; every user one or two global roles, every third one more in a
  // team scope. Admins hold the built-in admin role.
  const role = async (name: string, granted: string[], inherits: string[] = []) =>
    (await permissions.createRole({ actorId: '', name, permissions: granted, inherits })).role!.id;
  const reader = await role('bench-reader', ['users:read']);
  const auditor = await role('bench-auditor', ['audit:read'], [reader]);
  const lead = await role('bench-team-lead', ['roles:read', 'notifications:send'], [auditor]);
  const support = await role('bench-support', ['users:read', 'roles:read']);
  const roles = [reader, auditor, lead, support];
  const assign = (userId: string, roleId: string, scope = '') =>
    permissions.assignRole({ actorId: '', userId, roleId, roleName: '', scope });
  await inBatches(users, 16, async (user, index) => {
    await assign(user.id, roles[index % roles.length]!);
    if (index % 5 === 0) await assign(user.id, roles[(index + 1) % roles.length]!);
    if (index % 3 === 0)
      await assign(user.id, roles[(index + 2) % roles.length]!, `team-${index % 10}`);
  });
  await inBatches(admins, 16, (user) =>
    permissions.assignRole({
      actorId: '',
      userId: user.id,
      roleId: '',
      roleName: 'admin',
      scope: '',
    }),
  );

  // Notifications: NOTIFICATIONS_PER_USER each, sent by the platform over gRPC.
  const sends = users.flatMap((user) =>
    Array.from({ length: NOTIFICATIONS_PER_USER }, (_, n) => ({ user, n })),
  );
  await inBatches(sends, 25, ({ user, n }) =>
    notifications.sendNotification({
      senderId: '',
      recipientId: user.id,
      type: 'bench',
      title: `Bench notification ${n}`,
      body: 'Seeded by bench/gateway.bench.ts',
      data: undefined,
    }),
  );
  permissions.close();
  notifications.close();
  console.log(
    `seeded ${USERS} users (roles, ${NOTIFICATIONS_PER_USER} notifications each) and ${ADMINS} admins in ${((performance.now() - seedStarted) / 1000).toFixed(0)} s`,
  );

  // The supergraph the project composes (scripts/compose.ts), routed to this run's subgraphs.
  const supergraphFile = join(probeDir, 'supergraph.graphql');
  const compose = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/compose.ts', supergraphFile],
    { cwd: ROOT, encoding: 'utf8' },
  );
  if (compose.status !== 0) throw new Error(`compose failed: ${compose.stderr}`);
  const subgraphUrl = (name: string) =>
    `${apps.httpUrl(`${name}-subgraph` as Parameters<typeof apps.httpUrl>[0])}/graphql`;
  writeFileSync(
    supergraphFile,
    readFileSync(supergraphFile, 'utf8').replace(
      /@join__graph\(name: "(\w+)", url: "[^"]*"\)/g,
      (_match, name: string) => `@join__graph(name: "${name}", url: "${subgraphUrl(name)}")`,
    ),
  );

  const targets = await startTargets(supergraphFile);
  const peerLines = (name: string) => targetLogs.get(name)?.slice(-20).join('\n') ?? '';

  // Every target answers every query alike (the same user, the same data).
  const tokens = { users: users.map((user) => user.token), admins: admins.map((a) => a.token) };
  for (const query of queries) {
    const answers = new Map<string, string>();
    for (const target of targets.filter((t) => t.queries.includes(query.name))) {
      const body = await post(target, query.text, tokens[query.as][0]);
      const parsed = JSON.parse(body) as { data?: Data; errors?: unknown };
      if (parsed.errors || !parsed.data || !query.valid(parsed.data))
        throw new Error(
          `${target.name} answered ${query.name} wrongly: ${body.slice(0, 500)}\n${peerLines(target.name)}`,
        );
      answers.set(target.name, JSON.stringify(parsed.data));
    }
    const distinct = new Set(answers.values());
    console.log(
      `${query.name}: ${distinct.size === 1 ? 'every target answers alike' : `ANSWERS DIFFER: ${[...answers].map(([n, a]) => `${n}=${a.slice(0, 200)}`).join(' | ')}`}`,
    );
  }

  const project = targets.find((target) => target.name === 'project');
  const q1 = queries.find((query) => query.name === 'Q1');
  if (project && q1) console.log(await checkApq(project, q1, tokens.users[1]!));

  // Every target answers every query for BENCH_PRIME s before the first round: the subgraphs
  // and services are shared, and without this whichever target measures a query first meets
  // them cold (their JIT, their caches). The first round of Q2 was the dearest behind the
  // gateway with or without it (docs/benchmarks.md, the eighteenth session), so that is not
  // the whole cause.
  if (PRIME > 0) {
    for (const query of queries)
      for (const target of targets.filter((t) => t.queries.includes(query.name)))
        await load(target, query, tokens[query.as], PRIME);
  }

  const probesBefore = await readProbes(targets);
  // The Redis server this run uses (the machine may run others, e.g. tests' own).
  const redisPids = pgrep(`redis-server .*:${new URL(run.redisUrl).port || '6379'}`);
  const measurements: Measurement[] = [];
  console.log(
    `\n${PRIME} s of every query through every target first, unmeasured; ${ROUNDS} round(s); per measurement ${WARMUP} s warm-up, ${DURATION} s measured, ${CONNECTIONS} connections\n`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    for (const query of queries) {
      const eligible = targets.filter((t) => t.queries.includes(query.name));
      // The order of the targets rotates by round: none always goes first or last.
      const order = eligible.map((_, i) => eligible[(i + round) % eligible.length]!);
      for (const target of order) {
        const m = await measure(target, query, tokens[query.as], round, redisPids);
        measurements.push(m);
        console.log(
          `round ${round + 1} ${query.name} ${target.name.padEnd(12)} ${fmt(m.perSecond, 0).padStart(6)} req/s  p50 ${fmt(m.p50, 0)} ms  p99 ${fmt(m.p99, 0)} ms  errors ${m.errors}  gateway ${fmt(m.cpu['gateway under test'] ?? Number.NaN)} ms/req  behind ${fmt(behind(m.cpu))} ms/req  machine busy ${fmt(m.machineBusy * 100, 0)}%`,
        );
        if (m.errors > 0) console.log(`  first error: ${m.firstError}`);
      }
    }
  }
  const probesAfter = await readProbes(targets);
  const loadAfter = loadavg();

  report(measurements, targets, probesBefore, probesAfter);
  console.log(
    `\nload average (1, 5, 15 min) before the run: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}; ${cpus().length} cores`,
  );
  const hive = targets.some((target) => target.name.startsWith('hive'));
  console.log(
    `apps on Node ${process.version}, NODE_ENV=${NODE_ENV}${hive ? `; Hive Gateway on Node ${peerNodeVersion()}` : ''}`,
  );
}

// ---------------------------------------------------------------------------------------
// Targets: the gateways under comparison and the users subgraph.

interface Target {
  name: string;
  url: string;
  /** The gateway's process (none when the subgraph is called directly). */
  pid?: number | undefined;
  headers: Record<string, string>;
  queries: QueryName[];
  /** Where its cache probe writes (the project's gateway and the stock peer). */
  probeFile?: string;
}

const targetLogs = new Map<string, string[]>();

async function startTargets(supergraphFile: string): Promise<Target[]> {
  const wanted = new Set(
    (process.env['BENCH_TARGETS'] ?? 'project,stock,hive,hive-dedupe,subgraph').split(','),
  );
  const all = queries.map((query) => query.name);
  const targets: Target[] = [];
  if (wanted.has('project'))
    targets.push({
      name: 'project',
      url: `${apps.httpUrl('gateway')}/graphql`,
      pid: apps.pid('gateway'),
      headers: {},
      queries: all,
      probeFile: join(probeDir, 'gateway.json'),
    });

  // Another build of the project's gateway beside this one, on the same subgraphs: a change
  // measured side by side with the build before it (BENCH_BASELINE_GATEWAY=<its dist/main.js>,
  // a copy of that build's gateway/dist placed in gateway/, so that it finds node_modules).
  const baselineMain = process.env['BENCH_BASELINE_GATEWAY'];
  if (wanted.has('baseline') && baselineMain) {
    const gateway = APPS.find((app) => app.name === 'gateway');
    if (!gateway) throw new Error('no gateway app');
    const port = await freePort();
    const probeFile = join(probeDir, 'baseline.json');
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--import',
        PROBE,
        ...NODE_ARGS,
        ...BASELINE_NODE_ARGS,
        resolve(baselineMain),
      ],
      {
        cwd: join(ROOT, gateway.dir),
        env: {
          PATH: process.env['PATH'] ?? '',
          ...run.env,
          ...appEnvironment(gateway, apps.ports, apps.instancePorts),
          [gateway.portVariable]: String(port),
          [METRICS_PORT_VARIABLE]: String(await freePort()),
          GATEWAY_HOST: '127.0.0.1',
          ...quiet,
          BENCH_CACHE_PROBE_FILE: probeFile,
        },
        // The IPC channel tells the app when this process dies (see @platform/lifecycle).
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    collectLines('baseline', child);
    peers.push(child);
    targets.push({
      name: 'baseline',
      url: `http://127.0.0.1:${port}/graphql`,
      pid: child.pid,
      headers: {},
      queries: all,
      probeFile,
    });
    console.log(`baseline: the gateway built in ${dirname(dirname(resolve(baselineMain)))}`);
  }

  if (wanted.has('stock')) {
    const port = await freePort();
    const probeFile = join(probeDir, 'stock.json');
    const child = spawn(
      process.execPath,
      [
        '--enable-source-maps',
        '--import',
        'tsx',
        '--import',
        PROBE,
        ...STOCK_NODE_ARGS,
        'bench/stock-gateway.ts',
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env['PATH'] ?? '',
          NODE_ENV,
          BENCH_SUPERGRAPH_FILE: supergraphFile,
          BENCH_PORT: String(port),
          BENCH_INTERNAL_TOKEN: run.internalToken,
          BENCH_CACHE_PROBE_FILE: probeFile,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    collectLines('stock', child);
    peers.push(child);
    targets.push({
      name: 'stock',
      url: `http://127.0.0.1:${port}/graphql`,
      pid: child.pid,
      headers: {},
      queries: all,
      probeFile,
    });
  }

  if (wanted.has('hive') || wanted.has('hive-dedupe')) ensurePeersInstalled();
  for (const [name, deduplicate] of [
    ['hive', false],
    ['hive-dedupe', true],
  ] as const) {
    if (!wanted.has(name)) continue;
    const port = await freePort();
    const lines: string[] = [];
    targetLogs.set(name, lines);
    const child = startHiveGateway({
      supergraphFile,
      port,
      internalToken: run.internalToken,
      deduplicate,
      onLine: (line) => lines.push(line),
    });
    peers.push(child);
    targets.push({
      name,
      url: `http://127.0.0.1:${port}/graphql`,
      pid: child.pid,
      headers: {},
      queries: all,
    });
  }

  if (wanted.has('subgraph') && all.includes('Q1'))
    targets.push({
      name: 'subgraph',
      url: `${apps.httpUrl('users-subgraph')}/graphql`,
      headers: { [INTERNAL_TOKEN_HEADER]: run.internalToken },
      queries: ['Q1'],
    });

  // Up when it answers a query (peers print differently; this is the same for all).
  for (const target of targets)
    await eventually(
      async () => {
        const body = JSON.parse(await post(target, '{ __typename }')) as { data?: unknown };
        if (!body.data) throw new Error(`${target.name} not ready`);
      },
      60_000,
      250,
    ).catch((error: unknown) => {
      throw new Error(
        `${target.name} did not come up: ${String(error)}\n${targetLogs.get(target.name)?.join('\n') ?? ''}`,
      );
    });
  return targets;
}

function collectLines(name: string, child: ChildProcess): void {
  const lines: string[] = [];
  targetLogs.set(name, lines);
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)));
  }
}

async function post(
  target: Target,
  query: string | undefined,
  token?: string,
  extensions?: object,
): Promise<string> {
  const response = await fetch(target.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...target.headers,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, extensions }),
  });
  return response.text();
}

/**
 * Automatic persisted queries on a gateway: the hash alone first (not known yet), then hash and
 * text (registers it), then the hash alone again (answered from the registered text).
 */
async function checkApq(target: Target, query: Query, token: string): Promise<string> {
  const sha256Hash = createHash('sha256').update(query.text).digest('hex');
  const extensions = { persistedQuery: { version: 1, sha256Hash } };
  const first = JSON.parse(await post(target, undefined, token, extensions)) as {
    errors?: { message?: string; extensions?: { code?: string } }[];
  };
  const registered = JSON.parse(await post(target, query.text, token, extensions)) as {
    data?: Data;
  };
  const again = JSON.parse(await post(target, undefined, token, extensions)) as { data?: Data };
  // Apollo Server says PersistedQueryNotFound with code PERSISTED_QUERY_NOT_FOUND; clients
  // (Apollo Client's persisted-query link) recognise either.
  const notFound = first.errors?.[0];
  const unknownFirst =
    notFound?.message === 'PersistedQueryNotFound' ||
    notFound?.extensions?.code === 'PERSISTED_QUERY_NOT_FOUND';
  const works = unknownFirst && !!registered.data && !!again.data && query.valid(again.data);
  // As a frontend's persisted-query link sends it: GET with the hash alone (a hash never sent),
  // then GET with the registered hash; both with the preflight header CSRF prevention asks of GET.
  const viaGet = async (hash: string) => {
    const url = new URL(target.url);
    url.searchParams.set(
      'extensions',
      JSON.stringify({ persistedQuery: { version: 1, sha256Hash: hash } }),
    );
    const response = await fetch(url, {
      headers: {
        ...target.headers,
        authorization: `Bearer ${token}`,
        'apollo-require-preflight': 'true',
      },
    });
    return `HTTP ${response.status} ${(await response.text()).trim().slice(0, 240)}`;
  };
  const unknownHash = createHash('sha256').update(`never sent ${Date.now()}`).digest('hex');
  const gets = `\n  GET, unknown hash: ${await viaGet(unknownHash)}\n  GET, registered hash: ${await viaGet(sha256Hash)}`;
  return works
    ? `${target.name}: APQ works (an unknown hash is answered "${notFound?.message}", code ${notFound?.extensions?.code}; after the text is sent once, the hash alone is answered)${gets}`
    : `${target.name}: APQ NOT working as expected (first answer: ${JSON.stringify(first).slice(0, 200)}; hash alone after registering: ${JSON.stringify(again).slice(0, 200)})${gets}`;
}

// ---------------------------------------------------------------------------------------
// One measurement: warm-up, then load with CPU read from /proc before and after.

interface Measurement {
  round: number;
  query: QueryName;
  target: string;
  perSecond: number;
  p50: number;
  p99: number;
  /** Transport errors, timeouts, non-2xx, and 2xx answers with errors or incomplete data. */
  errors: number;
  firstError?: string | undefined;
  /** CPU ms per completed request, by process. */
  cpu: Record<string, number>;
  /** The machine's busy share of all cores during the window, and what no measured process used. */
  machineBusy: number;
  otherMsPerSecond: number;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** utime + stime of a process in ms (NaN when it is gone). */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command: state is field 3, utime field 14, stime field 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** CPU used since `before`, by the processes still running (one that exited counts 0). */
const usedSince = (pid: number, before: number) => {
  const used = cpuMs(pid) - before;
  return Number.isNaN(used) ? 0 : Math.max(0, used);
};

function machineTicks(): { busy: number; total: number } {
  const ticks = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = ticks.reduce((sum, tick) => sum + tick, 0);
  return { busy: total - ticks[3]! - ticks[4]!, total };
}

function pgrep(pattern: string): number[] {
  const found = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
  return found.stdout.split('\n').filter(Boolean).map(Number);
}

/** The PostgreSQL backends serving this run's database (its apps' connection pools). */
async function postgresBackends(): Promise<number[]> {
  const database = new URL(run.databaseUrl).pathname.slice(1);
  const { rows } = await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1',
    [database],
  );
  return rows.map((row) => row.pid);
}

const SERVICES = [
  'users-subgraph',
  'rbac-subgraph',
  'notifications-subgraph',
  'user-service',
  'auth-service',
  'permission-service',
  'notification-service',
] as const;
const BEHIND = [...SERVICES, 'PostgreSQL backends (this run)'];
const behind = (cpu: Record<string, number>) =>
  BEHIND.reduce((sum, name) => sum + (cpu[name] ?? 0), 0);

async function measure(
  target: Target,
  query: Query,
  tokens: string[],
  round: number,
  redisPids: number[],
): Promise<Measurement> {
  if (WARMUP > 0) await load(target, query, tokens, WARMUP);
  const processes: Record<string, number[]> = {
    ...(target.pid ? { 'gateway under test': [target.pid] } : {}),
    ...Object.fromEntries(SERVICES.map((name) => [name, [apps.pid(name)!]])),
    'redis-server (shared, approximate)': redisPids,
  };
  const backendsBefore = await postgresBackends();
  const before = Object.fromEntries(
    Object.entries(processes).map(([name, pids]) => [name, pids.map(cpuMs)]),
  );
  const pgBefore = new Map(backendsBefore.map((pid) => [pid, cpuMs(pid)]));
  const machineBefore = machineTicks();
  const selfBefore = process.cpuUsage();

  const outcome = await load(target, query, tokens, DURATION);

  const self = process.cpuUsage(selfBefore);
  const machine = machineTicks();
  const backendsAfter = await postgresBackends();
  const used: Record<string, number> = {};
  for (const [name, pids] of Object.entries(processes))
    used[name] = pids.reduce((sum, pid, i) => sum + usedSince(pid, before[name]![i]!), 0);
  // A backend that started during the window counts from zero.
  used['PostgreSQL backends (this run)'] = backendsAfter.reduce(
    (sum, pid) => sum + usedSince(pid, pgBefore.get(pid) ?? 0),
    0,
  );
  used['load generator (autocannon, this process)'] = (self.user + self.system) / 1000;

  // No completed request: no figure per request (NaN, shown as "-").
  const completed = outcome.responses || Number.NaN;
  const cpu = Object.fromEntries(Object.entries(used).map(([name, ms]) => [name, ms / completed]));
  const busyMs = ((machine.busy - machineBefore.busy) * 1000) / CLOCK_TICKS;
  const accounted = Object.values(used).reduce((sum, ms) => sum + ms, 0);
  return {
    round,
    query: query.name,
    target: target.name,
    perSecond: outcome.responses / outcome.seconds,
    p50: outcome.responses ? outcome.p50 : Number.NaN,
    p99: outcome.responses ? outcome.p99 : Number.NaN,
    errors: outcome.errors,
    firstError: outcome.firstError,
    cpu,
    machineBusy:
      (machine.busy - machineBefore.busy) / Math.max(1, machine.total - machineBefore.total),
    otherMsPerSecond: Math.max(0, busyMs - accounted) / outcome.seconds,
  };
}

interface LoadOutcome {
  responses: number;
  seconds: number;
  p50: number;
  p99: number;
  errors: number;
  firstError?: string | undefined;
}

/** autocannon at CONNECTIONS connections; each request takes the next token in turn. */
async function load(
  target: Target,
  query: Query,
  tokens: string[],
  seconds: number,
): Promise<LoadOutcome> {
  let next = 0;
  let responses = 0;
  let bad = 0;
  let firstError: string | undefined;
  const body = JSON.stringify({ query: query.text });
  const result = await autocannon({
    url: target.url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        body,
        setupRequest: (request) => ({
          ...request,
          headers: {
            'content-type': 'application/json',
            ...target.headers,
            authorization: `Bearer ${tokens[next++ % tokens.length]}`,
          },
        }),
        onResponse: (status, responseBody) => {
          responses++;
          let problem: string | undefined;
          if (status !== 200) problem = `HTTP ${status}`;
          else {
            try {
              const parsed = JSON.parse(responseBody) as { data?: Data; errors?: unknown };
              if (parsed.errors) problem = 'GraphQL errors';
              else if (!parsed.data || !query.valid(parsed.data)) problem = 'incomplete data';
            } catch {
              problem = 'not JSON';
            }
          }
          if (problem) {
            bad++;
            firstError ??= `${problem}: ${responseBody.slice(0, 300)}`;
          }
        },
      },
    ],
  });
  return {
    responses,
    seconds: result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    // non-2xx are counted by onResponse too (as HTTP errors); autocannon's own errors are
    // transport failures and timeouts, which never reach onResponse.
    errors: bad + result.errors,
    firstError:
      firstError ?? (result.errors > 0 ? `${result.errors} transport errors/timeouts` : undefined),
  };
}

// ---------------------------------------------------------------------------------------
// Cache probes.

interface ProbeCache {
  cache: string;
  gets: number;
  hits: number;
  misses: number;
  distinctMissedKeys: number;
}
type Probes = Map<string, ProbeCache[]>;

async function readProbes(targets: Target[]): Promise<Probes> {
  const probes: [string, number | undefined, string][] = [
    ...targets
      .filter((t) => t.probeFile)
      .map((t): [string, number | undefined, string] => [`${t.name} gateway`, t.pid, t.probeFile!]),
    ...(['users-subgraph', 'rbac-subgraph', 'notifications-subgraph'] as const).map(
      (name): [string, number | undefined, string] => [
        name,
        apps.pid(name),
        join(probeDir, `${name}.json`),
      ],
    ),
  ];
  for (const [, pid, file] of probes) {
    rmSync(file, { force: true });
    if (pid) process.kill(pid, 'SIGUSR2');
  }
  const result: Probes = new Map();
  for (const [name, , file] of probes) {
    const read = await eventually(
      () => JSON.parse(readFileSync(file, 'utf8')) as { caches: ProbeCache[] },
      5_000,
      50,
    ).catch(() => ({ caches: [] }));
    result.set(name, read.caches);
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// The report.

/** The median of the figures there are (NaN: none). */
const median = (values: number[]) => {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function report(measurements: Measurement[], targets: Target[], before: Probes, after: Probes) {
  const of = (query: QueryName, target: string) =>
    measurements.filter((m) => m.query === query && m.target === target);
  const med = (ms: Measurement[], pick: (m: Measurement) => number) => median(ms.map(pick));

  console.log(
    `\nMedians of ${ROUNDS} round(s). CPU is ms per completed request from /proc/<pid>/stat (utime + stime);` +
      `\n"behind" = the 3 subgraphs + 4 services + this run's PostgreSQL backends. Redis is shared with the` +
      `\nrest of the machine (approximate). "other" = machine CPU no measured process used (other work).` +
      `\n"errors" = summed over the rounds: transport errors and timeouts (10 s), non-2xx answers,` +
      `\nanswers with GraphQL errors and answers with incomplete data.`,
  );
  for (const query of queries) {
    console.log(`\n${query.name}: ${query.text}${query.as === 'admins' ? ' (as admins)' : ''}`);
    console.log(
      'target          req/s   p50 ms   p99 ms   errors   gateway ms/req   behind ms/req   redis ms/req   loadgen ms/req   other ms/s',
    );
    for (const target of targets.filter((t) => t.queries.includes(query.name))) {
      const ms = of(query.name, target.name);
      if (ms.length === 0) continue;
      console.log(
        [
          target.name.padEnd(12),
          fmt(
            med(ms, (m) => m.perSecond),
            0,
          ).padStart(8),
          fmt(
            med(ms, (m) => m.p50),
            0,
          ).padStart(8),
          fmt(
            med(ms, (m) => m.p99),
            0,
          ).padStart(8),
          String(ms.reduce((sum, m) => sum + m.errors, 0)).padStart(8),
          (target.pid ? fmt(med(ms, (m) => m.cpu['gateway under test'] ?? 0)) : '-').padStart(16),
          fmt(med(ms, (m) => behind(m.cpu))).padStart(15),
          fmt(med(ms, (m) => m.cpu['redis-server (shared, approximate)'] ?? 0)).padStart(14),
          fmt(med(ms, (m) => m.cpu['load generator (autocannon, this process)'] ?? 0)).padStart(16),
          fmt(
            med(ms, (m) => m.otherMsPerSecond),
            0,
          ).padStart(12),
        ].join(' '),
      );
    }
  }

  // Where the CPU goes, per process.
  for (const query of queries) {
    const columns = targets.filter(
      (t) => t.queries.includes(query.name) && of(query.name, t.name).length > 0,
    );
    console.log(`\n${query.name}: CPU ms per request by process (median of rounds)`);
    console.log(`${'process'.padEnd(44)}${columns.map((t) => t.name.padStart(13)).join('')}`);
    const names = [
      'gateway under test',
      ...BEHIND,
      'redis-server (shared, approximate)',
      'load generator (autocannon, this process)',
    ];
    for (const name of names)
      console.log(
        `${name.padEnd(44)}${columns
          .map((t) =>
            (name === 'gateway under test' && !t.pid
              ? '-'
              : fmt(med(of(query.name, t.name), (m) => m.cpu[name] ?? 0))
            ).padStart(13),
          )
          .join('')}`,
      );
    console.log(
      `${'sum behind the gateway'.padEnd(44)}${columns.map((t) => fmt(med(of(query.name, t.name), (m) => behind(m.cpu))).padStart(13)).join('')}`,
    );
  }

  // Ratios between the gateways (medians).
  const pairs: [string, string][] = [
    ['project', 'baseline'],
    ['project', 'stock'],
    ['baseline', 'stock'],
    ['project', 'hive'],
    ['project', 'hive-dedupe'],
    ['stock', 'hive'],
    ['hive-dedupe', 'hive'],
  ];
  console.log(
    "\nRatios (medians): req/s a/b, gateway CPU per request a/b (and round by round, each round's pair)",
  );
  for (const query of queries)
    for (const [a, b] of pairs) {
      const ma = of(query.name, a);
      const mb = of(query.name, b);
      if (ma.length === 0 || mb.length === 0) continue;
      const rps = med(ma, (m) => m.perSecond) / med(mb, (m) => m.perSecond);
      const gatewayCpu = (m: Measurement) => m.cpu['gateway under test'] ?? 0;
      const cpu = med(ma, gatewayCpu) / med(mb, gatewayCpu);
      // Each round's pair, measured minutes apart at most: on a noisy machine the ratio of the
      // medians can pair one target's quiet round with the other's busy one.
      const byRound = ma.flatMap((m) => {
        const other = mb.find((n) => n.round === m.round);
        return other && gatewayCpu(other) > 0 ? [fmt(gatewayCpu(m) / gatewayCpu(other))] : [];
      });
      console.log(
        `  ${query.name} ${`${a} / ${b}`.padEnd(24)} req/s ${fmt(rps)}x   gateway CPU/request ${fmt(cpu)}x (per round ${byRound.join(' / ')})`,
      );
    }
  const direct = of('Q1', 'subgraph');
  const project = of('Q1', 'project');
  if (direct.length > 0 && project.length > 0)
    console.log(
      `  Q1 project / users subgraph direct: req/s ${fmt(med(project, (m) => m.perSecond) / med(direct, (m) => m.perSecond))}x`,
    );

  // Plan and document caches, during the measured rounds (after every target had answered
  // every query once).
  console.log(
    '\nApollo caches during the rounds (lookups, hits, misses; probe: bench/cache-probe.mjs)',
  );
  for (const [name, caches] of after) {
    const earlier = before.get(name) ?? [];
    for (const cache of caches) {
      const prior = earlier.find((c) => c.cache === cache.cache) ?? {
        gets: 0,
        hits: 0,
        misses: 0,
        distinctMissedKeys: 0,
      };
      const gets = cache.gets - prior.gets;
      const misses = cache.misses - prior.misses;
      console.log(
        `  ${name.padEnd(24)} ${cache.cache.padEnd(62)} ${String(gets).padStart(8)} lookups, ${String(gets - misses).padStart(8)} hits, ${misses} misses${misses === 0 && gets > 0 ? ' (hit every time)' : ''}; before the rounds: ${prior.misses} misses of ${prior.gets}`,
      );
    }
  }
}

async function inBatches<T>(
  items: T[],
  size: number,
  work: (item: T, index: number) => Promise<unknown>,
): Promise<void> {
  for (let start = 0; start < items.length; start += size)
    await Promise.all(items.slice(start, start + size).map((item, i) => work(item, start + i)));
}

// ---------------------------------------------------------------------------------------
// The run (after every declaration above).

// Every app of the platform; the project's gateway, the subgraphs and the stock peer carry the
// cache probe (it does nothing without BENCH_CACHE_PROBE_FILE).
let apps!: AppCluster;
let started = false;
try {
  // On a busy machine an app may miss the harness's 30 s start-up deadline: try again.
  for (let attempt = 1; ; attempt++) {
    try {
      apps = await startApps(
        run,
        APP_NAMES,
        {
          ...Object.fromEntries(APP_NAMES.map((name) => [name, quiet])),
          'users-subgraph': { ...probed('users-subgraph'), RATE_LIMIT_PER_ADDRESS: '0' },
          'rbac-subgraph': probed('rbac-subgraph'),
          'notifications-subgraph': probed('notifications-subgraph'),
          gateway: probed('gateway'),
        },
        { nodeArgs: ['--import', PROBE, ...NODE_ARGS] },
      );
      break;
    } catch (error) {
      if (attempt === 3) throw error;
      console.error(`the stack did not start (attempt ${attempt}): ${String(error)}`);
    }
  }
  started = true;
  await admin.connect();
  await main();
} finally {
  for (const peer of peers) peer.kill('SIGTERM');
  await admin.end().catch(() => undefined);
  if (started) await apps.stopAll();
  await run.close();
  await smtp?.close();
  rmSync(probeDir, { recursive: true, force: true });
}
