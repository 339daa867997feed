// The `login + TOTP` scenario of `npm run bench:identity`: complete sign-ins (tokens received)
// of password-only accounts and of accounts with TOTP on, measured side by side in alternating
// rounds by one closed-loop driver, so all see the same machine (docs/benchmarks.md). Accounts
// with TOTP sign in two ways: the code beside the password in one request (`signIn(mfaCode)`),
// and the challenge round trip (`signIn`, then `verifyMfa`).
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { generate } from 'otplib';

export type GraphQL = <T>(query: string, variables: object, token?: string) => Promise<T>;

const REGISTER =
  'mutation ($input: RegisterInput!) { register(input: $input) { accessToken refreshToken } }';
const BEGIN = 'mutation { beginTotpEnrollment { secret } }';
const CONFIRM = 'mutation ($code: String!) { confirmTotpEnrollment(code: $code) { codes } }';
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken } }`;
const SIGN_IN = `mutation ($email: String!, $password: String!) {
  signIn(email: $email, password: $password) {
    __typename
    ... on AuthPayload { accessToken }
    ... on MfaChallenge { challenge } } }`;
const SIGN_IN_WITH_CODE = `mutation ($email: String!, $password: String!, $code: String!) {
  signIn(email: $email, password: $password, mfaCode: $code) {
    __typename
    ... on AuthPayload { accessToken refreshToken } } }`;
const VERIFY = `mutation ($challenge: String!, $code: String!) {
  verifyMfa(challenge: $challenge, code: $code) { accessToken refreshToken } }`;

/** TOTP: 30-second steps; the server accepts a step once per user (and ±1 step of drift). */
const PERIOD_MS = 30_000;
const currentStep = () => Math.floor(Date.now() / PERIOD_MS);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface TotpUser {
  email: string;
  secret: string;
  /** The newest step this user's code was sent for (the server refuses it, or older, again). */
  lastStep: number;
}

/** Runs `task` for every item, `parallel` at a time. */
async function inParallel<T>(
  items: readonly T[],
  parallel: number,
  task: (item: T) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

/**
 * Accounts through the product API (GraphQL through the gateway, `parallel` at a time):
 * `passwordOnly` registered, `withTotp` registered and enrolled (beginTotpEnrollment, then
 * confirmTotpEnrollment with the code of the current step, which that user has then used).
 */
export async function seedAccounts(
  graphql: GraphQL,
  options: { passwordOnly: number; withTotp: number; password: string; parallel: number },
) {
  const register = async (email: string) => {
    const { register } = await graphql<{ register: { accessToken: string } }>(REGISTER, {
      input: { email, password: options.password, displayName: email },
    });
    return register.accessToken;
  };
  const passwordEmails = Array.from(
    { length: options.passwordOnly },
    (_, index) => `bench-password-${index}@example.com`,
  );
  const totpEmails = Array.from(
    { length: options.withTotp },
    (_, index) => `bench-totp-${index}@example.com`,
  );
  const totpUsers: TotpUser[] = [];
  await inParallel(passwordEmails, options.parallel, async (email) => {
    await register(email);
  });
  await inParallel(totpEmails, options.parallel, async (email) => {
    const token = await register(email);
    const { beginTotpEnrollment } = await graphql<{ beginTotpEnrollment: { secret: string } }>(
      BEGIN,
      {},
      token,
    );
    const { secret } = beginTotpEnrollment;
    const step = currentStep();
    await graphql(
      CONFIRM,
      { code: await generate({ secret, epoch: (step * PERIOD_MS) / 1000 }) },
      token,
    );
    totpUsers.push({ email, secret, lastStep: step });
  });
  // The pool hands out the user whose last code is oldest first.
  totpUsers.sort((a, b) => a.lastStep - b.lastStep);
  return { passwordEmails, totpUsers };
}

/** CPU time (user + system) a process used so far, in clock ticks (1/100 s on Linux). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Waits until the apps are idle (together below `maxCores` of CPU over a second, twice in a
 * row), so what seeding left behind (events, notices) is not measured; gives up after `limitMs`.
 */
export async function settle(pids: readonly number[], maxCores = 0.1, limitMs = 120_000) {
  const ticks = () => pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
  const started = Date.now();
  let quiet = 0;
  while (quiet < 2 && Date.now() - started < limitMs) {
    const before = ticks();
    await pause(1_000);
    // Clock ticks are 1/100 s on Linux.
    quiet = (ticks() - before) / 100 < maxCores ? quiet + 1 : 0;
  }
  return (Date.now() - started) / 1000;
}

const TOTP_FLOWS = ['TOTP, one request', 'TOTP + challenge'] as const;
type Flow = 'password' | (typeof TOTP_FLOWS)[number];

export interface RoundResult {
  flow: Flow;
  round: number;
  /** Sign-ins completed (tokens received) within the duration, per second. */
  rate: number;
  p50: number;
  p99: number;
  errors: number;
  /** Times no enrolled user had a code left for the current step, and one had to wait. */
  waits: number;
  /** 1-minute load average as the round ended. */
  load: number;
  /** CPU milliseconds per completed sign-in, by process (the apps, and `bench` itself). */
  cpuMs: Record<string, number>;
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/**
 * `connections` closed loops for `seconds`; each loop signs in, then again. Only sign-ins
 * that ended with tokens within the time count; one that fails counts as an error.
 */
async function closedLoop(
  connections: number,
  seconds: number,
  signIn: () => Promise<void>,
  onError: (error: unknown) => void,
) {
  const latencies: number[] = [];
  let errors = 0;
  // Sign-ins under way at the end finish (their CPU is in the round's), but are not counted.
  let finished = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const begun = performance.now();
        try {
          await signIn();
          finished++;
          const done = performance.now();
          if (done <= end) latencies.push(done - begun);
        } catch (error) {
          errors++;
          onError(error);
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    errors,
    finished,
  };
}

/** Password-only sign-ins and sign-ins with TOTP, in alternating rounds (see the file's head). */
export function createSignInBench(
  graphql: GraphQL,
  accounts: { passwordEmails: readonly string[]; totpUsers: TotpUser[]; password: string },
  connections: number,
  /** The apps' process ids, by name: their CPU per sign-in is reported. */
  pids: Record<string, number>,
) {
  const { password } = accounts;
  let nextPassword = 0;
  let waits = 0;
  const firstErrors = new Map<string, string>();
  const pool = accounts.totpUsers;

  /** login, as a client without MFA signs in: done when the tokens arrive. */
  async function passwordSignIn() {
    const email = accounts.passwordEmails[nextPassword++ % accounts.passwordEmails.length]!;
    const { login } = await graphql<{ login: { accessToken: string; refreshToken: string } }>(
      LOGIN,
      { email, password },
    );
    if (!login.accessToken || !login.refreshToken) throw new Error('login answered no tokens');
  }

  /** The user whose code of the current step is unused the longest; waits if there is none. */
  async function takeTotpUser(): Promise<{ user: TotpUser; step: number }> {
    for (;;) {
      const step = currentStep();
      const user = pool[0];
      if (user && user.lastStep < step) {
        pool.shift();
        user.lastStep = step;
        return { user, step };
      }
      waits++;
      await pause(user ? (step + 1) * PERIOD_MS - Date.now() + 10 : 50);
    }
  }

  /** signIn with the authenticator's code beside the password: one request. */
  async function oneRequestSignIn() {
    const { user, step } = await takeTotpUser();
    try {
      const code = await generate({ secret: user.secret, epoch: (step * PERIOD_MS) / 1000 });
      const { signIn } = await graphql<{
        signIn: { __typename: string; accessToken?: string; refreshToken?: string };
      }>(SIGN_IN_WITH_CODE, { email: user.email, password, code });
      if (!signIn.accessToken || !signIn.refreshToken)
        throw new Error(`signIn with the code answered ${signIn.__typename}, no tokens`);
    } finally {
      pool.push(user);
    }
  }

  /** signIn, then verifyMfa with the authenticator's code: the challenge round trip. */
  async function totpSignIn() {
    const { user, step } = await takeTotpUser();
    try {
      const code = await generate({ secret: user.secret, epoch: (step * PERIOD_MS) / 1000 });
      const { signIn } = await graphql<{
        signIn: { __typename: string; challenge?: string; accessToken?: string };
      }>(SIGN_IN, { email: user.email, password });
      if (signIn.__typename !== 'MfaChallenge' || !signIn.challenge)
        throw new Error(`signIn answered ${signIn.__typename}, not a challenge`);
      const { verifyMfa } = await graphql<{
        verifyMfa: { accessToken: string; refreshToken: string };
      }>(VERIFY, { challenge: signIn.challenge, code });
      if (!verifyMfa.accessToken || !verifyMfa.refreshToken)
        throw new Error('verifyMfa answered no tokens');
    } finally {
      pool.push(user);
    }
  }

  const flows: Record<Flow, () => Promise<void>> = {
    password: passwordSignIn,
    'TOTP, one request': oneRequestSignIn,
    'TOTP + challenge': totpSignIn,
  };
  // A password period between any two TOTP ones: one step's worth of enrolled users suffices.
  const order: Flow[] = TOTP_FLOWS.flatMap((flow) => ['password', flow] as Flow[]);

  function run(flow: Flow, seconds: number) {
    return closedLoop(connections, seconds, flows[flow], (error) => {
      if (!firstErrors.has(flow)) {
        const message = error instanceof Error ? error.message : String(error);
        firstErrors.set(flow, message.slice(0, 300));
        console.error(`${flow}: first error: ${message.slice(0, 300)}`);
      }
    });
  }

  return {
    /** Unrecorded: each flow once, so the rounds measure JIT-compiled code. */
    async warmUp(seconds: number) {
      for (const flow of order) await run(flow, seconds);
    },

    /**
     * `rounds` rounds of the flows, strictly alternating (password, TOTP one request, password,
     * TOTP + challenge): never two TOTP periods back to back.
     */
    async rounds(rounds: number, seconds: number): Promise<RoundResult[]> {
      const results: RoundResult[] = [];
      for (let round = 1; round <= rounds; round++) {
        for (const flow of order) {
          const waitsBefore = waits;
          const ticksBefore = Object.fromEntries(
            Object.entries(pids).map(([name, pid]) => [name, cpuTicks(pid)]),
          );
          const benchBefore = process.cpuUsage();
          const { finished, ...result } = await run(flow, seconds);
          // The CPU measured includes the sign-ins that finished after the time: all of them.
          const completed = finished;
          const benchUsed = process.cpuUsage(benchBefore);
          const cpuMs = Object.fromEntries(
            Object.entries(pids).map(([name, pid]) => [
              name,
              ((cpuTicks(pid) - ticksBefore[name]!) * 10) / completed,
            ]),
          );
          cpuMs['bench'] = (benchUsed.user + benchUsed.system) / 1000 / completed;
          results.push({
            flow,
            round,
            ...result,
            waits: waits - waitsBefore,
            load: loadavg()[0]!,
            cpuMs,
          });
        }
      }
      return results;
    },
  };
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/** The rounds, each round's ratio TOTP / password, and the verdict on the 10% target. */
export function printSignInRounds(
  results: readonly RoundResult[],
  connections: number,
  seconds: number,
) {
  const ms = (value: number) => value.toFixed(1).padStart(8);
  console.log(
    `\nsign-ins side by side: ${connections} concurrent, ${seconds} s per flow and round, through the gateway`,
  );
  console.log('round  flow              sign-ins/s   p50 ms   p99 ms  errors  waits  load 1m');
  for (const r of results)
    console.log(
      [
        String(r.round).padEnd(6),
        r.flow.padEnd(16),
        r.rate.toFixed(1).padStart(11),
        ms(r.p50),
        ms(r.p99),
        String(r.errors).padStart(7),
        String(r.waits).padStart(6),
        r.load.toFixed(2).padStart(8),
      ].join(' '),
    );
  const rates = (flow: Flow, round?: number) =>
    results
      .filter((r) => r.flow === flow && (round === undefined || r.round === round))
      .map((r) => r.rate);
  console.log('');
  for (const flow of TOTP_FLOWS) {
    const ratios: number[] = [];
    for (const round of new Set(results.map((r) => r.round))) {
      const password = median(rates('password', round));
      const totp = rates(flow, round)[0];
      if (totp !== undefined && password > 0) ratios.push(totp / password);
    }
    const ratio = median(rates(flow)) / median(rates('password'));
    console.log(
      `${flow} / password sign-ins/s per round: ${ratios.map((r) => r.toFixed(2)).join(' / ')} ` +
        `(median ${median(ratios).toFixed(2)}); of the median rates: ${ratio.toFixed(2)} ` +
        `(target >= 0.90: ${ratio >= 0.9 ? 'met' : 'not met'})`,
    );
  }
  console.log(
    `load average now (1, 5, 15 min): ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
  // Where a sign-in's CPU goes (PostgreSQL, Redis and RabbitMQ are shared and not counted).
  const cpu = (flow: Flow, name: string) =>
    median(results.filter((r) => r.flow === flow).map((r) => r.cpuMs[name] ?? 0));
  const cell = (value: number) => value.toFixed(2).padStart(12);
  const flows: Flow[] = ['password', ...TOTP_FLOWS];
  console.log('\nCPU ms per completed sign-in (median of rounds)');
  console.log(`  ${'process'.padEnd(22)} ${flows.map((flow) => flow.padStart(18)).join(' ')}`);
  const totals = flows.map(() => 0);
  for (const name of Object.keys(results[0]?.cpuMs ?? {})) {
    const values = flows.map((flow) => cpu(flow, name));
    values.forEach((value, index) => (totals[index] = (totals[index] ?? 0) + value));
    console.log(`  ${name.padEnd(22)} ${values.map((v) => cell(v).padStart(18)).join(' ')}`);
  }
  console.log(`  ${'all'.padEnd(22)} ${totals.map((v) => cell(v).padStart(18)).join(' ')}`);
  // On a CPU-bound machine the rate ratio tends to this; it varies less with others' load.
  for (const [index, flow] of TOTP_FLOWS.entries())
    console.log(
      `  password / ${flow} CPU per sign-in: ${((totals[0] ?? 0) / (totals[index + 1] ?? 1)).toFixed(2)}`,
    );
}
