/** How hard and how long the chaos suite pushes: `CHAOS_PROFILE=full|short` (short by default). */
export interface ChaosProfile {
  name: 'short' | 'full';
  /** How long PostgreSQL, RabbitMQ and Redis are cut. */
  cutMs: number;
  /** Load lanes, each running rounds of every operation kind one after the other. */
  lanes: number;
  /** Pause between two rounds of one lane. */
  roundPauseMs: number;
  /** Users holding a live subscription, who receive the notifications sent. */
  subscribers: number;
  /** Accounts registered before the load starts (sign-in pool, permission subjects). */
  seedAccounts: number;
  /** Instances of the permission service, the subgraphs and the gateway. */
  instances: 1 | 2;
  /** Load before the first fault. */
  warmupMs: number;
  /** How long the load keeps running after a fault ends before the checks. */
  observeAfterMs: number;
  /** How long the checks wait for asynchronous effects (outbox, live push). */
  settleMs: number;
  /** Ended sessions and revoked permissions from earlier windows asked about again, at most. */
  checkCap: number;
}

const PROFILES: Record<ChaosProfile['name'], ChaosProfile> = {
  short: {
    name: 'short',
    cutMs: 3_500,
    lanes: 2,
    roundPauseMs: 250,
    subscribers: 3,
    seedAccounts: 10,
    instances: 2,
    warmupMs: 3_000,
    observeAfterMs: 11_500,
    settleMs: 15_000,
    checkCap: 30,
  },
  full: {
    name: 'full',
    cutMs: 10_000,
    lanes: 3,
    roundPauseMs: 100,
    subscribers: 6,
    seedAccounts: 24,
    instances: 2,
    warmupMs: 10_000,
    observeAfterMs: 20_000,
    settleMs: 30_000,
    checkCap: Number.POSITIVE_INFINITY,
  },
};

export function chaosProfile(env: NodeJS.ProcessEnv = process.env): ChaosProfile {
  const name = env['CHAOS_PROFILE'] ?? 'short';
  if (name !== 'short' && name !== 'full')
    throw new Error(`CHAOS_PROFILE must be short or full, not ${name}`);
  const profile = { ...PROFILES[name] };
  const instances = env['CHAOS_INSTANCES'];
  if (instances === '1' || instances === '2') profile.instances = Number(instances) as 1 | 2;
  return profile;
}
