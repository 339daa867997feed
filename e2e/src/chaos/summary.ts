import { writeFileSync } from 'node:fs';
import type { FaultReport } from './invariants';
import type { ChaosProfile } from './profile';

const seconds = (ms: number | undefined) =>
  ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`;

/** The per-fault table (markdown, to paste into docs) and every broken invariant below it. */
export function formatSummary(
  profile: ChaosProfile,
  reports: readonly FaultReport[],
  notes: readonly string[] = [],
): string {
  const header = [
    'fault',
    'requests',
    'refused as asked',
    'failures by code',
    'notifications sent / lost / duplicated (live / caught up)',
    'welcomes lost / duplicated',
    'live connections ended',
    'registrations that cannot sign in',
    'resurrected sessions / permissions',
    'acknowledged, not in effect',
    'unclean errors',
    '500 in outage',
    '5xx >10 s after',
    'slowest answer',
    'recovery: first full round',
    'recovery: every kind succeeding',
    '/ready 503 naming it',
    '/ready 200 again after',
    'processes exited',
  ];
  const rows = reports.map((report) => [
    report.cutMs > 0 ? `${report.fault} (${seconds(report.cutMs)})` : report.fault,
    String(report.requests),
    String(report.refusedAsExpected),
    Object.entries(report.failuresByCode)
      .sort(([, a], [, b]) => b - a)
      .map(([code, count]) => `${code} ${count}`)
      .join(', ') || 'none',
    `${report.events.sent} / ${report.events.lost} / ${report.events.duplicated + report.events.liveDuplicated} (${report.events.live} / ${report.events.caughtUp})`,
    `${report.events.welcomeLost} / ${report.events.welcomeDuplicated}`,
    Object.entries(report.liveCloses)
      .map(([what, count]) => `${what}: ${count}`)
      .join(', ') || 'none',
    `${report.registrations.cannotSignIn} of ${report.registrations.acked}`,
    `${report.resurrectedSessions} / ${report.resurrectedPermissions}`,
    String(report.notInEffect),
    String(report.unclean),
    String(report.outage500),
    String(report.late5xx),
    report.slowestAnswer,
    seconds(report.recoveryMs),
    report.steadyMs === undefined
      ? `never (${report.slowestKind ?? ''})`
      : `${seconds(report.steadyMs)}${report.slowestKind ? ` (${report.slowestKind})` : ''}`,
    // An instant loss (no cut) has nothing /ready must name.
    report.cutMs === 0 ? '-' : report.readiness.namedTheDependency ? 'yes' : 'no',
    seconds(report.readiness.readyAgainMs),
    String(report.processes.exited.length + report.processes.replaced.length),
  ]);
  const table = [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`);
  const lines = [
    `Chaos suite, ${profile.name} profile: ${profile.lanes} load lanes, ${profile.subscribers} live subscribers, ${profile.instances} instance(s) of the permission service, subgraphs and gateway, cuts of ${seconds(profile.cutMs)}${Number.isFinite(profile.checkCap) ? `; ended sessions and revoked permissions from earlier windows re-asked: ${profile.checkCap} at random` : ''}.`,
    ...notes,
    '',
    ...table,
  ];
  for (const report of reports) {
    const flaps = Object.entries(report.readiness.later);
    if (flaps.length > 0)
      lines.push(
        '',
        `/ready not 200 more than 10 s after "${report.fault}" ended (not counted against it): ${flaps.map(([app, what]) => `${app} ${what}`).join('; ')}`,
      );
    const failures = Object.entries(report.roundFailures);
    if (failures.length > 0)
      lines.push(
        '',
        `Rounds after "${report.fault}" ended that failed before the first full one: ${failures.map(([reason, count]) => `${count}× ${reason}`).join('; ')}`,
      );
  }
  for (const report of reports) {
    if (report.problems.length === 0) continue;
    lines.push(
      '',
      `Broken invariants after "${report.fault}":`,
      ...report.problems.map((problem) => `- ${problem}`),
    );
  }
  if (reports.every((report) => report.problems.length === 0))
    lines.push('', 'Every invariant held.');
  return lines.join('\n');
}

/** Prints the summary and, when CHAOS_SUMMARY_FILE is set, writes it there too. */
export function publishSummary(text: string, file = process.env['CHAOS_SUMMARY_FILE']): void {
  console.log(`\n${text}\n`);
  if (file) writeFileSync(file, `${text}\n`);
}
