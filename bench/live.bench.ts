// `npm run bench:live`: SUBSCRIBERS users, each with one graphql-ws subscription to
// `notificationAdded`, split over two gateways, each gateway on its own notifications
// subgraph instance; then notifications sent through the gateway at RATE per second for
// BENCH_DURATION seconds, round-robin over the users. Prints delivery latency (from the
// moment the send mutation returned to the moment the subscriber received it) p50/p99,
// deliveries per second, missing and duplicate deliveries, and the gateways' memory per idle
// connection. Figures are recorded in docs/benchmarks.md.
import { readFileSync } from 'node:fs';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { APP_NAMES } from '@platform/apps';
import { createTestRun, eventually, startApps } from '@platform/testing';
import { gatewayClient } from './gateway.client';

const SUBSCRIBERS = Number(process.env['BENCH_SUBSCRIBERS'] ?? 1_000);
const RATE = Number(process.env['BENCH_RATE'] ?? 500);
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10);
const MAX_IN_FLIGHT = Number(process.env['BENCH_IN_FLIGHT'] ?? 50);
const ADMIN = { email: 'bench-admin@example.com', password: 'benchmark admin secret' };

const nodeArgs = process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean);
const run = await createTestRun();
const quiet = { LOG_LEVEL: 'warn' };
const apps = await startApps(
  run,
  APP_NAMES,
  {
    ...Object.fromEntries(APP_NAMES.map((name) => [name, quiet])),
    'users-subgraph': {
      ...quiet,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      RATE_LIMIT_PER_ADDRESS: '0',
    },
  },
  { nodeArgs },
);
const second = await startApps(
  run,
  ['notifications-subgraph', 'gateway'],
  { 'notifications-subgraph': quiet, gateway: quiet },
  { nodeArgs, alongside: apps },
);
const gateways = [apps.httpUrl('gateway'), second.httpUrl('gateway')];
const gatewayPids = [apps.pid('gateway')!, second.pid('gateway')!];

const graphql = gatewayClient(gateways[0]!);

/** The machine's CPU time (all cores, in core-seconds) busy and in all, from /proc/stat. */
function machineCpu(since?: { busy: number; total: number }) {
  const ticks = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = ticks.reduce((sum, tick) => sum + tick, 0) / 100;
  const busy = total - (ticks[3]! + ticks[4]!) / 100; // all but idle and iowait
  return since ? { busy: busy - since.busy, total: total - since.total } : { busy, total };
}

const rssKiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

const admin = await eventually(
  () =>
    graphql<{ login: { accessToken: string } }>(
      'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }',
      { e: ADMIN.email, p: ADMIN.password },
    ),
  20_000,
);

// Subscribers: registered 8 at a time (each registration hashes a password).
const users: { id: string; token: string }[] = [];
for (let start = 0; start < SUBSCRIBERS; start += 8) {
  const batch = await Promise.all(
    Array.from({ length: Math.min(8, SUBSCRIBERS - start) }, (_, offset) =>
      graphql<{ register: { accessToken: string; user: { id: string } } }>(
        'mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }',
        {
          input: {
            email: `live-${start + offset}@example.com`,
            password: 'benchmark passphrase 42',
            displayName: `Live ${start + offset}`,
          },
        },
      ),
    ),
  );
  users.push(...batch.map((r) => ({ id: r.register.user.id, token: r.register.accessToken })));
}
// Let the welcome notifications go by before anyone subscribes.
await new Promise((resolve) => setTimeout(resolve, 3_000));

// Warm both gateways alike before measuring (the first one served every registration):
// HTTP queries, then a few WebSocket subscriptions, so code is loaded and the heap has grown
// on both, and what is measured next is the connections' own cost.
for (const gatewayUrl of gateways) {
  const query = gatewayClient(gatewayUrl);
  for (let n = 0; n < 500; n += 10)
    await Promise.all(
      users
        .slice(n, n + 10)
        .map((user) => query<{ me: { id: string } }>('{ me { id } }', {}, user.token)),
    );
}
const warm = users.slice(0, 20).map((user, index) =>
  createClient({
    url: `${gateways[index % 2]!.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
  }),
);
const warmSubscriptions = warm.map((client) =>
  client.subscribe(
    { query: 'subscription { notificationAdded { id } }' },
    { next: () => undefined, error: () => undefined, complete: () => undefined },
  ),
);
await new Promise((resolve) => setTimeout(resolve, 2_000));
for (const unsubscribe of warmSubscriptions) unsubscribe();
for (const client of warm) await client.dispose();
await new Promise((resolve) => setTimeout(resolve, 2_000));
const idleBefore = gatewayPids.map(rssKiB);
const received = new Map<string, number[]>(); // notification id -> receive times
const clients: Client[] = [];
let subscribedCount = 0;
for (const [index, user] of users.entries()) {
  const client = createClient({
    url: `${gateways[index % 2]!.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
  });
  clients.push(client);
  client.subscribe(
    { query: 'subscription { notificationAdded { id title createdAt } }' },
    {
      next: (result) => {
        const id = (result.data as { notificationAdded?: { id: string } } | undefined)
          ?.notificationAdded?.id;
        if (!id) return;
        const times = received.get(id) ?? [];
        times.push(performance.now());
        received.set(id, times);
      },
      error: (error) => console.error('subscription error', error),
      complete: () => undefined,
    },
  );
  subscribedCount++;
}
// Idle: every connection open and subscribed, nothing flowing.
await new Promise((resolve) => setTimeout(resolve, 5_000));
const idleAfter = gatewayPids.map(rssKiB);

const sentAt = new Map<string, number>();
// When each send was due to start: latency from there includes the send itself.
const issuedAt = new Map<string, number>();
const total = Math.round(RATE * DURATION);
let issued = 0;
let inFlight = 0;
let sendErrors = 0;
const cpuBefore = machineCpu();
const started = performance.now();
await new Promise<void>((done) => {
  const pump = () => {
    const now = performance.now();
    while (issued < total && inFlight < MAX_IN_FLIGHT && started + (issued * 1000) / RATE <= now) {
      const user = users[issued % users.length]!;
      const due = started + (issued * 1000) / RATE;
      issued++;
      inFlight++;
      graphql<{ sendNotification: { id: string } }>(
        'mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id } }',
        { input: { userId: user.id, type: 'bench', title: `n${issued}`, body: '' } },
        admin.login.accessToken,
      )
        .then(
          (data) => {
            sentAt.set(data.sendNotification.id, performance.now());
            issuedAt.set(data.sendNotification.id, due);
          },
          () => sendErrors++,
        )
        .finally(() => {
          inFlight--;
          if (issued === total && inFlight === 0) done();
        });
    }
    if (issued < total) setTimeout(pump, 1);
  };
  pump();
});
const sendSeconds = (performance.now() - started) / 1000;
const cpuDuringSend = machineCpu(cpuBefore);
// The last deliveries.
await new Promise((resolve) => setTimeout(resolve, 3_000));

const latencies: number[] = [];
const endToEnd: number[] = [];
let missing = 0;
let duplicates = 0;
let early = 0;
for (const [id, sent] of sentAt) {
  const times = received.get(id);
  if (!times) {
    missing++;
    continue;
  }
  if (times.length > 1) duplicates += times.length - 1;
  const latency = times[0]! - sent;
  if (latency < 0) early++;
  latencies.push(Math.max(0, latency));
  endToEnd.push(times[0]! - issuedAt.get(id)!);
}
const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
};
const at = (q: number) => quantile(latencies, q);

for (const client of clients) await client.dispose();
await second.stopAll();
await apps.stopAll();
await run.close();

const perConnection = gatewayPids.map(
  (_, index) => ((idleAfter[index]! - idleBefore[index]!) * 1024) / (subscribedCount / 2),
);
console.log(`\n${subscribedCount} subscribers over 2 gateways x 2 notifications subgraphs`);
console.log(
  `sent ${sentAt.size} notifications in ${sendSeconds.toFixed(1)} s (${(sentAt.size / sendSeconds).toFixed(0)}/s, target ${RATE}/s), ${sendErrors} send errors`,
);
console.log(
  `delivered ${latencies.length} (${(latencies.length / sendSeconds).toFixed(0)}/s), missing ${missing}, duplicates ${duplicates}, before the send returned ${early}`,
);
console.log(
  `delivery latency after the send returned: p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, max ${at(1).toFixed(1)} ms`,
);
console.log(
  `latency from the moment each send was due (includes the send): p50 ${quantile(endToEnd, 0.5).toFixed(1)} ms, p99 ${quantile(endToEnd, 0.99).toFixed(1)} ms`,
);
console.log(
  `machine CPU while sending: ${((100 * cpuDuringSend.busy) / cpuDuringSend.total).toFixed(0)}% busy, ${((1000 * cpuDuringSend.busy) / Math.max(1, sentAt.size)).toFixed(2)} ms of CPU per notification (all processes)`,
);
console.log(
  `gateway memory per idle connection (RSS growth / connections): ${perConnection.map((bytes) => `${(bytes / 1024).toFixed(1)} KB`).join(', ')}`,
);
