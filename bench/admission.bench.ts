// `npm run bench:admission`: the gateway's admission of a request (the token's session checked,
// the caller's budget charged: gateway/src/limits/request-budget.ts) on the machine's Redis,
// under an isolated key prefix, two ways side by side: asking Redis on every request (what the
// gateway does while it does not watch the ended sessions), and with the watch and budget
// leases (what it does normally). 50 callers with a session each, 50 charges in flight;
// BENCH_ROUNDS rounds (3) of BENCH_CHARGES charges (20,000) each way, alternating. Prints the
// CPU of this process per charge and the charges a second, per round and as medians, with the
// load average. Figures are recorded in docs/benchmarks.md.
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import {
  createRequestBudget,
  type BudgetCaller,
} from '@platform/gateway/src/limits/request-budget';
import { createLogger } from '@platform/logger';
import { createRedis, watchKey, type KeyWatch } from '@platform/redis';
import { createSessionRevocations, REVOKED_SESSIONS_KEY } from '@platform/tokens';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CHARGES = Number(process.env['BENCH_CHARGES'] ?? 20_000);
const CALLERS = 50;

const logger = createLogger({ name: 'bench-admission', level: 'silent' });
const keyPrefix = `bench:admission:${randomUUID()}:`;
const redis = await createRedis({
  url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
  keyPrefix,
  logger,
});
const revocations = createSessionRevocations(redis, {
  rebuild: () => revocations.restore([]),
});
await revocations.rebuild();
const watched = watchKey(redis, REVOKED_SESSIONS_KEY, { logger });
// Closed at once: never watching, so every charge asks Redis.
const unwatched = watchKey(redis, REVOKED_SESSIONS_KEY, { logger });
unwatched.close();
while (!watched.watching) await new Promise((resolve) => setTimeout(resolve, 10));

const callers: BudgetCaller[] = Array.from({ length: CALLERS }, (_, index) => ({
  clientAddress: `198.51.100.${index}`,
  session: { userId: randomUUID(), sessionId: randomUUID(), expiresAt: Date.now() + 3_600_000 },
}));

/** CPU µs of this process per charge, and charges a second, over CHARGES charges. */
async function measure(watch: KeyWatch): Promise<{ cpu: number; rate: number }> {
  const budget = createRequestBudget({
    redis,
    revocations,
    endedSessions: watch,
    perSecond: 5_000,
    burst: 50_000,
    logger,
  });
  // Every caller's session checked once (and a lease taken, where it leases).
  await Promise.all(callers.map((caller) => budget.charge(caller, 2)));
  let started = 0;
  const cpu = process.cpuUsage();
  const wall = performance.now();
  await Promise.all(
    callers.map(async (caller) => {
      while (started++ < CHARGES) {
        const { decision } = await budget.charge(caller, 2);
        if (!decision.allowed) throw new Error('a charge was refused: the budget is too small');
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return {
    cpu: (used.user + used.system) / CHARGES,
    rate: (CHARGES * 1_000) / (performance.now() - wall),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
const ways = [
  {
    name: 'asks Redis on every request',
    watch: unwatched,
    rounds: [] as { cpu: number; rate: number }[],
  },
  { name: 'watch + leases', watch: watched, rounds: [] as { cpu: number; rate: number }[] },
];
const load = loadavg().map((value) => value.toFixed(2));
for (let round = 1; round <= ROUNDS; round++)
  for (const way of ways) {
    const result = await measure(way.watch);
    way.rounds.push(result);
    console.log(
      `round ${round} ${way.name.padEnd(28)} ${result.cpu.toFixed(1).padStart(6)} µs CPU/charge ` +
        `${Math.round(result.rate).toLocaleString('en').padStart(9)} charges/s`,
    );
  }
console.log('\nmedians');
for (const way of ways)
  console.log(
    `${way.name.padEnd(34)} ${median(way.rounds.map((r) => r.cpu))
      .toFixed(1)
      .padStart(6)} µs CPU/charge ` +
      `${Math.round(median(way.rounds.map((r) => r.rate)))
        .toLocaleString('en')
        .padStart(9)} charges/s`,
  );
console.log(
  `\nload average (1, 5, 15 min) before: ${load.join(' ')}; after: ${loadavg()
    .map((value) => value.toFixed(2))
    .join(' ')}; Node ${process.version}`,
);

watched.close();
const keys = await redis.keys(`${keyPrefix}*`);
if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(keyPrefix.length)));
redis.disconnect();
