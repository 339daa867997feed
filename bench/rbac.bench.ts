// `npm run bench:rbac`: CheckPermission over gRPC against a running permission service with a
// warm cache, for BENCH_DURATION seconds after BENCH_WARMUP, two ways: closed loop (50 calls
// always in flight: the most it can do) and open loop (BENCH_RATE calls/s on schedule, at
// most 50 in flight); then CheckPermissions with a batch of 20 the same ways. Prints calls/s,
// p50 and p99 of each, and what a batch costs relative to one single check. Figures are
// recorded in docs/benchmarks.md.
import { createGrpcClient } from '@platform/grpc';
import { PERMISSION_CATALOGUE } from '@platform/permissions';
import { permissionV1, userV1 } from '@platform/proto';
import { createTestRun, startApps } from '@platform/testing';

const CONCURRENCY = 50;
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 3);
const BATCH = 20;
const RATE = Number(process.env['BENCH_RATE'] ?? 5_000);

const run = await createTestRun();
const apps = await startApps(
  run,
  ['user-service', 'permission-service'],
  {
    'user-service': { LOG_LEVEL: 'warn' },
    'permission-service': { LOG_LEVEL: 'warn' },
  },
  { nodeArgs: process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) },
);
const internal = { internalToken: run.internalToken };
const users = createGrpcClient(userV1.UserServiceService, {
  ...internal,
  address: apps.grpcAddress('user-service'),
});
const permissions = createGrpcClient(permissionV1.PermissionServiceService, {
  ...internal,
  address: apps.grpcAddress('permission-service'),
});

// A user holding a role that inherits another: the check walks real data.
const { user } = await users.createUser({ email: 'bench@example.com', displayName: 'Bench' });
const parent = await permissions.createRole({
  actorId: '',
  name: 'bench-parent',
  permissions: ['users:read', 'audit:read'],
  inherits: [],
});
const child = await permissions.createRole({
  actorId: '',
  name: 'bench-child',
  permissions: ['roles:read', 'notifications:*'],
  inherits: [parent.role!.id],
});
await permissions.assignRole({
  actorId: '',
  userId: user!.id,
  roleId: child.role!.id,
  roleName: '',
  scope: '',
});
const catalogue = Object.keys(PERMISSION_CATALOGUE);
const batch = Array.from({ length: BATCH }, (_, index) => catalogue[index % catalogue.length]!);

interface Figures {
  perSecond: number;
  p50: number;
  p99: number;
}

/** Keeps CONCURRENCY calls in flight for `seconds`; latencies in milliseconds. */
async function load(call: () => Promise<unknown>, seconds: number): Promise<Figures> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < until) {
        const begin = performance.now();
        await call();
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { perSecond: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

/**
 * Open loop: starts RATE calls per second on schedule, whether or not earlier ones returned
 * (at most CONCURRENCY in flight; a call that cannot start on time waits and its wait counts
 * in its latency, which is measured from when it was due, not from when it was sent).
 */
async function steady(call: () => Promise<unknown>, seconds: number): Promise<Figures> {
  const latencies: number[] = [];
  const total = Math.round(RATE * seconds);
  const started = performance.now();
  let issued = 0;
  let inFlight = 0;
  await new Promise<void>((done) => {
    const pump = () => {
      const now = performance.now();
      while (issued < total && inFlight < CONCURRENCY) {
        const due = started + (issued * 1000) / RATE;
        if (due > now) break;
        issued++;
        inFlight++;
        void call().then(() => {
          latencies.push(performance.now() - due);
          inFlight--;
          if (issued === total && inFlight === 0) done();
        });
      }
      // Timers fire about every millisecond: the calls due by then start together.
      if (issued < total) setTimeout(pump, 1);
    };
    pump();
  });
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { perSecond: latencies.length / elapsed, p50: at(0.5), p99: at(0.99) };
}

async function scenario(call: () => Promise<unknown>) {
  if (WARMUP > 0) await load(call, WARMUP);
  return { closed: await load(call, DURATION), open: await steady(call, DURATION) };
}

const single = await scenario(() =>
  permissions.checkPermission({ userId: user!.id, permission: 'users:read', scope: '' }),
);
const batched = await scenario(() =>
  permissions.checkPermissions({ userId: user!.id, permissions: batch, scope: '' }),
);

users.close();
permissions.close();
await apps.stopAll();
await run.close();

const row = (name: string, figures: Figures) =>
  [
    name.padEnd(28),
    String(Math.round(figures.perSecond)).padStart(8),
    figures.p50.toFixed(2).padStart(8),
    figures.p99.toFixed(2).padStart(8),
  ].join(' ');
console.log(`\nwarm cache, ${DURATION} s per scenario\n`);
console.log('scenario                      calls/s   p50 ms   p99 ms');
console.log(`closed loop: ${CONCURRENCY} calls always in flight (the most it can do)`);
console.log(row('  CheckPermission', single.closed));
console.log(row(`  CheckPermissions (${BATCH})`, batched.closed));
console.log(`open loop: ${RATE} calls/s on schedule, at most ${CONCURRENCY} in flight`);
console.log(row('  CheckPermission', single.open));
console.log(row(`  CheckPermissions (${BATCH})`, batched.open));
console.log(
  `\nbatch of ${BATCH} / single: ${(batched.open.p50 / single.open.p50).toFixed(2)}x at p50 ` +
    `(open loop), ${(single.closed.perSecond / batched.closed.perSecond).toFixed(2)}x in ` +
    `calls/s (closed loop)`,
);
