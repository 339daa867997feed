// `npm run bench:identity`: login (real argon2id), refreshSession and `me` through the
// gateway at 50 concurrent connections, each for BENCH_DURATION seconds after BENCH_WARMUP, against the whole stack
// started as processes on an isolated database. Prints requests/s, p50, p99, errors and the
// peak memory (VmHWM) of every process. Figures from a run are recorded in docs/benchmarks.md.
import { readFileSync } from 'node:fs';
import autocannon, { type Result } from 'autocannon';
import { APP_NAMES } from '@platform/apps';
import { createTestRun, startApps } from '@platform/testing';
import { gatewayClient } from './gateway.client';

const CONNECTIONS = 50;
const DURATION = Number(process.env['BENCH_DURATION'] ?? 10);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 3);
const PASSWORD = 'benchmark passphrase 42';

// BENCH_APP_ENV='{"REQUEST_BUDGET_PER_SECOND":"0"}' adds to every app's environment (A/B runs).
// BENCH_SCENARIOS=me,refresh runs only those; BENCH_NODE_ARGS (e.g. `--cpu-prof
// --cpu-prof-dir=/tmp/prof`) are given to every app's node, for profiling under load.
const SCENARIOS = new Set((process.env['BENCH_SCENARIOS'] ?? 'login,refresh,me').split(','));
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
console.log('\npeak resident memory (VmHWM), MiB');
for (const [name, mib] of Object.entries(memory)) console.log(`  ${name.padEnd(24)} ${mib}`);
