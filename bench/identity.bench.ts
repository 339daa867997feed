// `npm run bench:identity`: login (real argon2id), refreshSession and `me` through the
// gateway at 50 concurrent connections, each for BENCH_DURATION seconds after BENCH_WARMUP, against the whole stack
// started as processes on an isolated database. Prints requests/s, p50, p99, errors and the
// peak memory (VmHWM) of every process. Then `login + TOTP` (scenario `totp`): password-only
// sign-ins and sign-ins with TOTP, the code beside the password in one request and the
// challenge round trip (signIn + verifyMfa), side by side in BENCH_ROUNDS alternating rounds
// (sign-in.load.ts). Figures from a run are recorded in docs/benchmarks.md.
import { readFileSync } from 'node:fs';
import autocannon, { type Result } from 'autocannon';
import { APP_NAMES } from '@platform/apps';
import { createTestRun, startApps } from '@platform/testing';
import { gatewayClient } from './gateway.client';
import {
  createSignInBench,
  printSignInRounds,
  seedAccounts,
  settle,
  type RoundResult,
} from './sign-in.load';

const CONNECTIONS = 50;
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 3);
const PASSWORD = 'benchmark passphrase 42';

// BENCH_APP_ENV='{"REQUEST_BUDGET_PER_SECOND":"0"}' adds to every app's environment (A/B runs).
// BENCH_SCENARIOS=me,refresh runs only those; BENCH_NODE_ARGS (e.g. `--cpu-prof
// --cpu-prof-dir=/tmp/prof`) are given to every app's node, for profiling under load.
const SCENARIOS = new Set((process.env['BENCH_SCENARIOS'] ?? 'login,refresh,me,totp').split(','));
// `totp`: rounds of each flow; accounts with TOTP on (each can sign in once per 30-s step, so
// there must be more than one step's worth of sign-ins) and password-only accounts.
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const TOTP_USERS = Number(process.env['BENCH_TOTP_USERS'] ?? 2400);
const PASSWORD_USERS = Number(process.env['BENCH_PASSWORD_USERS'] ?? 1200);
const NODE_ARGS = process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean);

const run = await createTestRun();
const appEnv: Record<string, string> = {
  LOG_LEVEL: 'warn',
  ...(JSON.parse(process.env['BENCH_APP_ENV'] ?? '{}') as Record<string, string>),
};
const apps = await startApps(
  run,
  APP_NAMES,
  Object.fromEntries(
    APP_NAMES.map((name) => [
      name,
      name === 'users-subgraph' ? { ...appEnv, RATE_LIMIT_PER_ADDRESS: '0' } : appEnv,
    ]),
  ),
  { nodeArgs: NODE_ARGS },
);
const url = `${apps.httpUrl('gateway')}/graphql`;

const graphql = gatewayClient(apps.httpUrl('gateway'));

const REGISTER =
  'mutation ($input: RegisterInput!) { register(input: $input) { accessToken refreshToken } }';
const LOGIN =
  'mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }';
const REFRESH =
  'mutation ($token: String!) { refreshSession(refreshToken: $token) { refreshToken } }';
const ME = '{ me { id email displayName status } }';

// Three sessions per connection: requests cut off at the end of the warm-up take their rotated
// tokens with them, and enough must be left for every connection afterwards.
const emails = Array.from({ length: 3 * CONNECTIONS }, (_, index) => `bench-${index}@example.com`);
const sessions: { accessToken: string; refreshToken: string }[] = [];
for (const email of emails) {
  const { register } = await graphql<{ register: { accessToken: string; refreshToken: string } }>(
    REGISTER,
    {
      input: { email, password: PASSWORD, displayName: email },
    },
  );
  sessions.push(register);
}

function peakMemoryMiB(): Record<string, number> {
  return Object.fromEntries(
    APP_NAMES.map((name) => {
      const status = readFileSync(`/proc/${apps.pid(name)}/status`, 'utf8');
      const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return [name, Math.round(kib / 1024)];
    }),
  );
}

const graphqlErrors: Record<string, number> = {};

/** Runs one scenario; GraphQL errors (HTTP 200 with `errors`) are counted separately. */
async function bench(title: string, request: autocannon.Request): Promise<Result> {
  // An unrecorded warm-up first, so the figures are of JIT-compiled code, not of start-up.
  if (WARMUP > 0) await load(title, request, WARMUP);
  return load(title, request, DURATION);
}

function load(title: string, request: autocannon.Request, duration: number): Promise<Result> {
  graphqlErrors[title] = 0;
  const onResponse = request.onResponse;
  return autocannon({
    title,
    url,
    connections: CONNECTIONS,
    duration,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        ...request,
        onResponse: (status, body, context, headers) => {
          if (body.includes('"errors"')) {
            graphqlErrors[title] = (graphqlErrors[title] ?? 0) + 1;
            if (graphqlErrors[title] === 1)
              console.error(`${title}: first error: ${status} ${body.slice(0, 300)}`);
          }
          if (typeof onResponse === 'function') onResponse(status, body, context, headers);
        },
      },
    ],
  });
}

let next = 0;
const results: { scenario: string; result: Result }[] = [];

if (SCENARIOS.has('login'))
  results.push({
    scenario: 'login (argon2id)',
    result: await bench('login', {
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({
          query: LOGIN,
          variables: { email: emails[next++ % emails.length], password: PASSWORD },
        }),
      }),
    }),
  });

// Each of the sessions is refreshed in turn: a request takes a session's current token, its
// response puts the rotated one back (one request per connection in flight, so never two
// requests with one token).
const queue = sessions.map((session) => session.refreshToken);
if (SCENARIOS.has('refresh'))
  results.push({
    scenario: 'refreshSession',
    result: await bench('refresh', {
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({ query: REFRESH, variables: { token: queue.shift() } }),
      }),
      onResponse: (_status, body) => {
        const parsed = JSON.parse(body) as { data?: { refreshSession: { refreshToken: string } } };
        if (parsed.data) queue.push(parsed.data.refreshSession.refreshToken);
      },
    }),
  });

const meSession = await graphql<{ login: { accessToken: string } }>(LOGIN, {
  email: emails[0],
  password: PASSWORD,
});
if (SCENARIOS.has('me'))
  results.push({
    scenario: 'me',
    result: await bench('me', {
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${meSession.login.accessToken}`,
      },
      body: JSON.stringify({ query: ME }),
    }),
  });

let signInRounds: RoundResult[] = [];
if (SCENARIOS.has('totp')) {
  const seeding = performance.now();
  const accounts = await seedAccounts(graphql, {
    passwordOnly: PASSWORD_USERS,
    withTotp: TOTP_USERS,
    password: PASSWORD,
    parallel: 32,
  });
  const seeded = (performance.now() - seeding) / 1000;
  // What seeding set going (welcome and `security.mfa` notices, role assignments) must be done.
  const settled = await settle(APP_NAMES.map((name) => apps.pid(name) ?? 0).filter(Boolean));
  console.log(
    `totp: ${PASSWORD_USERS} password-only and ${TOTP_USERS} TOTP accounts seeded through the gateway in ${seeded.toFixed(0)} s; idle after ${settled.toFixed(0)} s more`,
  );
  const signIns = createSignInBench(
    graphql,
    { ...accounts, password: PASSWORD },
    CONNECTIONS,
    Object.fromEntries(APP_NAMES.map((name) => [name, apps.pid(name) ?? 0])),
  );
  if (WARMUP > 0) await signIns.warmUp(WARMUP);
  signInRounds = await signIns.rounds(ROUNDS, DURATION);
}

const memory = peakMemoryMiB();
await apps.stopAll();
await run.close();

console.log(`\n${CONNECTIONS} connections, ${DURATION} s per scenario, through the gateway\n`);
console.log('scenario          req/s    p50 ms   p99 ms   errors   graphql errors');
for (const { scenario, result } of results) {
  console.log(
    [
      scenario.padEnd(17),
      String(Math.round(result.requests.average)).padStart(6),
      String(result.latency.p50).padStart(8),
      String(result.latency.p99).padStart(8),
      String(result.errors + result.non2xx).padStart(8),
      String(graphqlErrors[result.title ?? ''] ?? 0).padStart(16),
    ].join(' '),
  );
}

const login = results.find((r) => r.scenario === 'login (argon2id)');
const refresh = results.find((r) => r.scenario === 'refreshSession');
if (login && refresh)
  console.log(
    `\nrefresh / login = ${(refresh.result.requests.average / login.result.requests.average).toFixed(1)}x`,
  );
if (signInRounds.length > 0) printSignInRounds(signInRounds, CONNECTIONS, DURATION);
console.log('\npeak resident memory (VmHWM), MiB');
for (const [name, mib] of Object.entries(memory)) console.log(`  ${name.padEnd(24)} ${mib}`);
