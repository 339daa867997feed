import { isAlive } from './harness';
import {
  HAS_PERMISSION,
  PASSWORD,
  USE_PERMISSION,
  type Account,
  type LoadState,
  type Subscriber,
} from './load';
import type { Outcome, Recorder, RequestRecord } from './recorder';
import { readinessAround, type ReadinessReport, type ReadySample } from './readiness';

export interface Fault {
  name: string;
  /** When the fault began and ended (epoch ms). */
  start: number;
  end: number;
}

export interface FaultReport {
  fault: string;
  cutMs: number;
  requests: number;
  /** Answers that were the refusal asked for (an ended session, a revoked permission). */
  refusedAsExpected: number;
  failuresByCode: Record<string, number>;
  events: {
    sent: number;
    lost: number;
    duplicated: number;
    live: number;
    caughtUp: number;
    liveDuplicated: number;
    welcomeLost: number;
    welcomeDuplicated: number;
  };
  registrations: { acked: number; cannotSignIn: number };
  resurrectedSessions: number;
  resurrectedPermissions: number;
  notInEffect: number;
  unclean: number;
  outage500: number;
  late5xx: number;
  /** From the fault's end to the end of the first round begun after it in which every kind succeeded. */
  /** Live connections closed and subscription errors, by close code or error code. */
  liveCloses: Record<string, number>;
  readiness: ReadinessReport;
  /** The load request that took longest to be answered in the window. */
  slowestAnswer: string;
  /** Why the rounds after the fault's end, before the first full one, failed (reason → count). */
  roundFailures: Record<string, number>;
  recoveryMs: number | undefined;
  /** From the fault's end until every kind of request succeeds again and keeps succeeding. */
  steadyMs: number | undefined;
  /** The kind of request that took longest to succeed again. */
  slowestKind: string | undefined;
  processes: { exited: string[]; replaced: string[] };
  /** Every broken invariant, with its evidence. */
  problems: string[];
}

export interface CheckContext {
  recorder: Recorder;
  gateways: readonly string[];
  state: LoadState;
  subscribers: readonly Subscriber[];
  settleMs: number;
  /** At most this many sessions (and permissions) from before `since` are asked about again. */
  checkCap: number;
  pidsAtStart: Record<string, number | undefined>;
  pids: () => Record<string, number | undefined>;
  logs: () => Record<string, string[]>;
  /** `<app>#<instance>` → port, to name the addresses in log lines. */
  ports: () => Record<string, number>;
  /** The /ready answers of every HTTP app instance so far. */
  readiness: readonly ReadySample[];
}

const INBOX = `query ($after: String) { me { notifications(first: 100, after: $after) {
  edges { node { id type title } } pageInfo { hasNextPage endCursor } } } }`;
const LOGIN = `mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }`;

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Every item acknowledged after `since`, and at most `cap` of the ones before, at random. */
function sample<T extends { at: number }>(items: readonly T[], since: number, cap: number): T[] {
  const old = items.filter((item) => item.at <= since);
  const picked = old.length <= cap ? old : old.toSorted(() => Math.random() - 0.5).slice(0, cap);
  return [...picked, ...items.filter((item) => item.at > since)];
}

const pairs = <T>(items: readonly T[], gateways: number): [T, number][] =>
  items.flatMap((item) =>
    Array.from({ length: gateways }, (_, gateway) => [item, gateway] as [T, number]),
  );

/** The refusals some questions are asked for: not failures. */
const EXPECTED_REFUSALS: Record<string, string> = {
  'me (ended session)': 'UNAUTHENTICATED',
  'use permission (revoked)': 'FORBIDDEN',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const RETRYABLE = new Set([
  'SERVICE_UNAVAILABLE',
  'NO_ANSWER',
  'NO_ANSWER_IN_15S',
  'NOT_JSON',
  'INTERNAL_SERVER_ERROR',
]);
const retryable = (codes: readonly string[]) =>
  codes.length === 0 || codes.some((code) => RETRYABLE.has(code));

const describeRecord = (record: RequestRecord, origin: number) =>
  `#${record.seq} ${record.kind} gw${record.gateway} t${origin <= record.start ? '+' : ''}${((record.start - origin) / 1000).toFixed(1)}s HTTP ${record.status} ${record.codes.join(',') || 'ok'}${record.messages.length ? ` "${record.messages.join(' | ').slice(0, 160)}"` : ''}`;

/** Each app's log lines at level warn or above (errors first), or mentioning an exit, in [from, to]. */
export function logEvidence(
  logs: Record<string, string[]>,
  from: number,
  to: number,
  perApp = 3,
  ports: Record<string, number> = {},
): string[] {
  const lines: string[] = [];
  for (const [app, output] of Object.entries(logs)) {
    const picked: { level: number; line: string }[] = [];
    for (const line of output) {
      let entry: { level?: number; time?: number | string; msg?: string } | undefined;
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        entry = undefined;
      }
      if (!entry) {
        if (/error|exit|fatal/i.test(line)) picked.push({ level: 60, line });
        continue;
      }
      const time = typeof entry.time === 'string' ? Date.parse(entry.time) : (entry.time ?? 0);
      if ((entry.level ?? 0) >= 40 && time >= from && time <= to)
        picked.push({ level: entry.level ?? 0, line });
    }
    picked.sort((a, b) => b.level - a.level);
    const names = new Map(Object.entries(ports).map(([name, port]) => [String(port), name]));
    const annotate = (line: string) =>
      line.replace(/127\.0\.0\.1:(\d+)/g, (match, port: string) =>
        names.has(port) ? `${match} (${names.get(port)})` : match,
      );
    for (const { line } of picked.slice(0, perApp))
      lines.push(`    [${app}] ${annotate(line).slice(0, 500)}`);
    if (picked.length > perApp) lines.push(`    [${app}] ... ${picked.length - perApp} more`);
  }
  return lines;
}

/** All notifications in the inbox of the holder of `token`; undefined while it cannot be read. */
async function inbox(context: CheckContext, token: string, gateway = 0) {
  type Node = { id: string; type: string; title: string };
  type Page = {
    me: {
      notifications: {
        edges: { node: Node }[];
        pageInfo: { hasNextPage: boolean; endCursor: string | null };
      };
    } | null;
  };
  const nodes: Node[] = [];
  let after: string | null = null;
  for (;;) {
    const page: Outcome<Page> = await context.recorder.graphql<Page>(
      { source: 'check', kind: 'inbox', gateway },
      context.gateways[gateway]!,
      INBOX,
      { token, variables: { after } },
    );
    const connection = page.data?.me?.notifications;
    if (!page.ok || !connection) return undefined;
    nodes.push(...connection.edges.map((edge) => edge.node));
    if (!connection.pageInfo.hasNextPage) return nodes;
    after = connection.pageInfo.endCursor;
  }
}

/** Asks until an answer is conclusive (not a retryable failure), or the deadline passes. */
async function conclusive<T>(
  deadline: number,
  ask: () => Promise<{ codes: string[]; data: T | undefined; ok: boolean }>,
): Promise<{ codes: string[]; data: T | undefined; ok: boolean } | undefined> {
  for (;;) {
    const answer = await ask();
    if (answer.ok || !retryable(answer.codes)) return answer;
    if (Date.now() > deadline) return undefined;
    await sleep(300);
  }
}

/**
 * After a fault: what was acknowledged took effect exactly once, nothing ended or revoked came
 * back, the answers during the fault were clean, and every process is the one that started.
 * `since` and `cutoff` bound the acknowledgements this check owns (the ones before `since`
 * were checked after an earlier fault; sessions and permissions are checked again every time).
 */
export async function checkAfterFault(
  context: CheckContext,
  fault: Fault,
  window: { from: number },
  acked: { since: number; cutoff: number },
  cutMs: number,
  /** The dependency the fault takes away, as /ready names it (none for an instant loss). */
  dependency?: string,
): Promise<FaultReport> {
  const { recorder, gateways, state, subscribers } = context;
  const problems: string[] = [];
  const deadline = Date.now() + context.settleMs;
  const inRange = (at: number) => at > acked.since && at <= acked.cutoff;

  // 1. Every acknowledged sendNotification: in the inbox exactly once; pushed live, or caught up.
  const sends = state.sends.filter((send) => inRange(send.at));
  const inboxes = new Map<number, { id: string; type: string; title: string }[]>();
  const countIn = (subscriber: number, title: string) =>
    inboxes.get(subscriber)?.filter((node) => node.title === title).length ?? 0;
  for (;;) {
    for (const subscriber of new Set(sends.map((send) => send.item.subscriber))) {
      const nodes = await inbox(context, subscribers[subscriber]!.account.token);
      if (nodes) inboxes.set(subscriber, nodes);
    }
    const settled = sends.every(
      (send) =>
        countIn(send.item.subscriber, send.item.title) >= 1 &&
        subscribers[send.item.subscriber]!.received.has(send.item.id),
    );
    if (settled || Date.now() > deadline) break;
    await sleep(500);
  }
  const events = {
    sent: sends.length,
    lost: 0,
    duplicated: 0,
    live: 0,
    caughtUp: 0,
    liveDuplicated: 0,
    welcomeLost: 0,
    welcomeDuplicated: 0,
  };
  for (const send of sends) {
    const { id, title, subscriber } = send.item;
    const count = countIn(subscriber, title);
    const pushed = subscribers[subscriber]!.received.get(id) ?? 0;
    const at = `${((send.at - fault.start) / 1000).toFixed(1)}s after the fault began`;
    if (!inboxes.has(subscriber)) {
      events.lost += 1;
      problems.push(
        `sendNotification ${id} (acknowledged ${at}): the recipient's inbox could not be read within ${context.settleMs} ms`,
      );
    } else if (count === 0 && pushed === 0) {
      events.lost += 1;
      problems.push(
        `sendNotification ${id} "${title}" (acknowledged ${at}) lost: not in the inbox of subscriber ${subscriber}, never pushed live`,
      );
    } else if (count === 0) {
      events.lost += 1;
      problems.push(
        `sendNotification ${id} "${title}" (acknowledged ${at}) pushed live but missing from the inbox`,
      );
    } else if (count > 1) {
      events.duplicated += 1;
      problems.push(
        `sendNotification "${title}" (acknowledged ${at}) is ${count} times in the inbox`,
      );
    }
    if (pushed > 0) events.live += 1;
    else if (count > 0) events.caughtUp += 1;
    if (pushed > 1) {
      events.liveDuplicated += 1;
      problems.push(
        `notification ${id} "${title}" pushed ${pushed} times to the live subscriber ${subscriber}`,
      );
    }
  }

  // 2. Every acknowledged registration can sign in, and was welcomed exactly once.
  const registrations = state.registrations.filter((registration) => inRange(registration.at));
  let cannotSignIn = 0;
  const pendingWelcome: Account[] = [];
  await mapLimit(registrations, 4, async ({ item: account, at }) => {
    const login = await conclusive(deadline, () =>
      recorder.graphql<{ login: { accessToken: string } }>(
        { source: 'check', kind: 'sign in (registered)', gateway: 0 },
        gateways[0]!,
        LOGIN,
        { variables: { email: account.email, password: PASSWORD } },
      ),
    );
    if (!login?.ok) {
      cannotSignIn += 1;
      problems.push(
        `registration of ${account.email} (acknowledged ${((at - fault.start) / 1000).toFixed(1)}s after the fault began) cannot sign in: ${login ? login.codes.join(',') : 'no conclusive answer'}`,
      );
    } else pendingWelcome.push(account);
  });
  const welcomes = new Map<string, number>();
  for (;;) {
    for (const account of pendingWelcome) {
      const nodes = await inbox(context, account.token);
      if (nodes) welcomes.set(account.id, nodes.filter((node) => node.type === 'welcome').length);
    }
    if (
      pendingWelcome.every((account) => (welcomes.get(account.id) ?? 0) >= 1) ||
      Date.now() > deadline
    )
      break;
    await sleep(500);
  }
  for (const account of pendingWelcome) {
    const count = welcomes.get(account.id) ?? 0;
    if (count === 0) {
      events.welcomeLost += 1;
      problems.push(
        `welcome notification of ${account.email} (registration acknowledged) never arrived`,
      );
    } else if (count > 1) {
      events.welcomeDuplicated += 1;
      problems.push(`welcome notification of ${account.email} arrived ${count} times`);
    }
  }

  // 3. No ended session works again; 4. no revoked permission is granted again: on every instance.
  let resurrectedSessions = 0;
  const ended = sample(
    state.endedSessions.filter((item) => item.at <= acked.cutoff),
    acked.since,
    context.checkCap,
  );
  await mapLimit(pairs(ended, gateways.length), 8, async ([{ item, at }, gateway]) => {
    const answer = await conclusive(deadline, () =>
      recorder.graphql<{ me: { id: string } | null }>(
        { source: 'check', kind: 'me (ended session)', gateway },
        gateways[gateway]!,
        '{ me { id } }',
        { token: item.token },
      ),
    );
    const when = `${((at - fault.start) / 1000).toFixed(1)}s from the fault's start`;
    if (answer?.data?.me) {
      resurrectedSessions += 1;
      problems.push(
        `session of user ${item.userId} ended ${when} works again on gateway ${gateway}: me = ${JSON.stringify(answer.data.me)}`,
      );
    } else if (!answer)
      problems.push(
        `session ended ${when}: no conclusive answer on gateway ${gateway} before the deadline`,
      );
    else if (!answer.codes.includes('UNAUTHENTICATED'))
      problems.push(
        `session ended ${when}: me on gateway ${gateway} answered ${answer.codes.join(',') || 'null'}, not UNAUTHENTICATED`,
      );
  });
  let resurrectedPermissions = 0;
  const revoked = sample(
    state.revoked.filter((item) => item.at <= acked.cutoff),
    acked.since,
    context.checkCap,
  );
  await mapLimit(pairs(revoked, gateways.length), 8, async ([{ item: account, at }, gateway]) => {
    const meta = { source: 'check' as const, gateway };
    const use = await conclusive(deadline, () =>
      recorder.graphql(
        { ...meta, kind: 'use permission (revoked)' },
        gateways[gateway]!,
        USE_PERMISSION,
        {
          token: account.token,
        },
      ),
    );
    const has = await conclusive(deadline, () =>
      recorder.graphql<{ hasPermission: boolean }>(
        { ...meta, kind: 'hasPermission (revoked)' },
        gateways[gateway]!,
        HAS_PERMISSION,
        { token: account.token },
      ),
    );
    const when = `${((at - fault.start) / 1000).toFixed(1)}s from the fault's start`;
    if (use?.ok || has?.data?.hasPermission === true) {
      resurrectedPermissions += 1;
      problems.push(
        `${account.email}: the role unassigned ${when} is granted again on gateway ${gateway} (users: ${use?.ok ? 'answered' : use?.codes.join(',')}, hasPermission: ${String(has?.data?.hasPermission)})`,
      );
    } else if (!use || !has)
      problems.push(
        `permission revoked ${when} from ${account.email}: no conclusive answer on gateway ${gateway}`,
      );
    else if (!use.codes.includes('FORBIDDEN'))
      problems.push(
        `permission revoked ${when} from ${account.email}: users on gateway ${gateway} answered ${use.codes.join(',')}, not FORBIDDEN`,
      );
  });

  const to = Date.now();
  // 5. Acknowledged and not in effect at once (seen by the load itself).
  const notInEffect = state.notInEffect.filter((item) => item.at >= window.from && item.at < to);
  for (const item of notInEffect)
    problems.push(`acknowledged ${item.kind} not in effect: ${item.detail}`);

  // 6. The answers: clean during the fault, no 500 for the outage, no 5xx 10 s after it ended.
  const requests = recorder.requests.filter(
    (record) => record.start >= window.from && record.start < to,
  );
  const failuresByCode: Record<string, number> = {};
  let refusedAsExpected = 0;
  for (const record of requests)
    for (const code of new Set(record.codes))
      if (EXPECTED_REFUSALS[record.kind] === code) refusedAsExpected += 1;
      else failuresByCode[code] = (failuresByCode[code] ?? 0) + 1;
  const unclean = requests.filter((record) => record.unclean.length > 0);
  const liveUnclean = recorder.live.filter(
    (event) => event.at >= window.from && event.at < to && event.unclean.length > 0,
  );
  const slowest = requests
    .filter((record) => record.source === 'load')
    .reduce<RequestRecord | undefined>(
      (worst, record) =>
        !worst || record.end - record.start > worst.end - worst.start ? record : worst,
      undefined,
    );
  const liveCloses: Record<string, number> = {};
  for (const event of recorder.live)
    if (event.at >= window.from && event.at < to && event.type !== 'connected') {
      const key =
        event.type === 'closed'
          ? `close ${event.code ?? '?'}`
          : `${event.type} ${(event.codes ?? []).join(',')}`;
      liveCloses[key] = (liveCloses[key] ?? 0) + 1;
    }
  const outage500 = requests.filter(
    (record) => record.status === 500 || record.codes.includes('INTERNAL_SERVER_ERROR'),
  );
  const late5xx = requests.filter(
    (record) => record.status >= 500 && record.start > fault.end + 10_000,
  );
  const evidence = (records: RequestRecord[], title: string) => {
    if (records.length === 0) return;
    const reasons = new Map<string, RequestRecord[]>();
    for (const record of records) {
      const reason =
        record.unclean[0] ?? `${record.kind}: HTTP ${record.status} ${record.codes.join(',')}`;
      const key = reason.replace(/#\d+|\d+(\.\d+)?s\b/g, '');
      reasons.set(key, [...(reasons.get(key) ?? []), record]);
    }
    problems.push(`${records.length} ${title}:`);
    for (const [reason, group] of reasons) {
      problems.push(`  ${group.length}× ${reason.slice(0, 300)}`);
      for (const record of group.slice(0, 2))
        problems.push(`    e.g. ${describeRecord(record, fault.start)}`);
    }
  };
  evidence(unclean, 'unclean answers (contract error rules broken or internals leaked)');
  for (const event of liveUnclean)
    problems.push(
      `live subscriber ${event.subscriber} (gw${event.gateway}) at t+${((event.at - fault.start) / 1000).toFixed(1)}s: ${event.unclean.join('; ')}`,
    );
  evidence(outage500, 'answers were HTTP 500 / INTERNAL_SERVER_ERROR, not SERVICE_UNAVAILABLE');
  evidence(late5xx, 'answers were 5xx more than 10 s after the fault ended');

  // 7. Recovery. `recoveryMs`: from the fault's end to the end of the first round begun after
  // it in which every kind succeeded (bounded below by how long a round takes). `steadyMs`:
  // from the fault's end to the answer of the first success after the last failure, in the
  // kind that took longest (0 when nothing failed after the end).
  const since = state.rounds.filter((round) => round.start >= fault.end);
  const fullRound = since
    .filter((round) => round.failed.length === 0)
    .sort((a, b) => a.end - b.end)[0];
  const recoveryMs = fullRound ? fullRound.end - fault.end : undefined;
  /** Why the rounds begun after the fault's end and before the first full one failed. */
  const roundFailures: Record<string, number> = {};
  for (const round of since)
    if (!fullRound || round.start < fullRound.start)
      for (const reason of round.why) roundFailures[reason] = (roundFailures[reason] ?? 0) + 1;
  if (recoveryMs === undefined) {
    const failing = new Map<string, number>();
    for (const round of since)
      for (const kind of round.failed) failing.set(kind, (failing.get(kind) ?? 0) + 1);
    problems.push(
      `no fully successful round after the fault ended (${since.length} rounds); kinds failing in them: ${JSON.stringify(Object.fromEntries(failing))}`,
    );
  }
  const failedRequest = (record: RequestRecord) =>
    record.codes.some((code) => EXPECTED_REFUSALS[record.kind] !== code);
  const load = requests.filter((record) => record.source === 'load');
  let steadyMs: number | undefined = 0;
  let slowestKind: string | undefined;
  for (const kind of new Set(load.map((record) => record.kind))) {
    const ofKind = load.filter((record) => record.kind === kind);
    const lastFailure = ofKind.filter(failedRequest).at(-1);
    if (!lastFailure) continue;
    const next = ofKind.find((record) => record.seq > lastFailure.seq && !failedRequest(record));
    if (!next) {
      steadyMs = undefined;
      slowestKind = kind;
      problems.push(
        `${kind} still failing when the checks began: last ${describeRecord(lastFailure, fault.start)}`,
      );
      break;
    }
    const ms = Math.max(0, next.end - fault.end);
    if (steadyMs !== undefined && ms >= steadyMs) {
      steadyMs = ms;
      slowestKind = kind;
    }
  }

  // 8. Readiness: 503 naming the dependency while it is away, 200 within 10 s after.
  const readiness = readinessAround(context.readiness, fault, to, dependency);
  if (dependency && !readiness.namedTheDependency)
    problems.push(
      `no /ready answered 503 naming ${dependency} while it was cut (named: ${readiness.namedDown.join('; ') || 'nothing'}; answers: ${Object.entries(
        readiness.statusesDuring,
      )
        .map(([app, statuses]) => `${app} ${statuses}`)
        .join(', ')})`,
    );
  if (readiness.readyAgainMs === undefined)
    problems.push(
      `/ready never 200 again after its last other answer up to 10 s after the end: ${readiness.stillDown.map((app) => `${app} (${readiness.lastNotReady[app]})`).join(', ')}`,
    );
  else if (readiness.readyAgainMs > 10_000)
    problems.push(
      `/ready took ${(readiness.readyAgainMs / 1000).toFixed(1)} s after the fault's end to be 200 everywhere (more than 10 s); last not-200 answers: ${Object.entries(
        readiness.lastNotReady,
      )
        .map(([app, last]) => `${app} ${last}`)
        .join('; ')}`,
    );

  // 9. The processes that started are the ones running.
  const now = context.pids();
  const exited: string[] = [];
  const replaced: string[] = [];
  for (const [app, pid] of Object.entries(context.pidsAtStart)) {
    if (now[app] !== pid) replaced.push(app);
    else if (!isAlive(pid)) exited.push(app);
  }
  if (exited.length || replaced.length)
    problems.push(
      `processes exited: ${exited.join(', ') || 'none'}; replaced: ${replaced.join(', ') || 'none'}`,
    );

  const broken =
    problems.length > 0
      ? [
          '  app log lines at level warn or above during the window:',
          ...logEvidence(context.logs(), window.from, Date.now(), 3, context.ports()),
        ]
      : [];
  return {
    fault: fault.name,
    cutMs,
    requests: requests.length,
    refusedAsExpected,
    failuresByCode,
    events,
    registrations: { acked: registrations.length, cannotSignIn },
    resurrectedSessions,
    resurrectedPermissions,
    notInEffect: notInEffect.length,
    unclean: unclean.length + liveUnclean.length,
    outage500: outage500.length,
    late5xx: late5xx.length,
    liveCloses,
    slowestAnswer: slowest
      ? `${((slowest.end - slowest.start) / 1000).toFixed(1)} s (${slowest.kind}, ${slowest.codes.join(',') || 'ok'}, begun t${slowest.start >= fault.start ? '+' : ''}${((slowest.start - fault.start) / 1000).toFixed(1)}s)`
      : '-',
    readiness,
    roundFailures,
    recoveryMs,
    steadyMs,
    slowestKind,
    processes: { exited, replaced },
    problems: problems.length ? [...problems, ...broken] : [],
  };
}
