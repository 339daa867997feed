import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';

/** One answer of an app instance's `GET /ready`. */
export interface ReadySample {
  at: number;
  /** `<app>#<instance>` */
  app: string;
  /** HTTP status; 0 when no answer came within 2 s. */
  status: number;
  /** What the answer names as down. */
  down: string[];
}

export interface ReadinessWatch {
  readonly samples: ReadySample[];
  stop(): Promise<void>;
}

/**
 * Asks every HTTP app instance's `/ready` every `intervalMs`, as an orchestrator's readiness
 * probe would (with the internal credential, which may learn what is down).
 */
export function watchReadiness(
  targets: readonly { app: string; url: string }[],
  internalToken: string,
  intervalMs = 500,
): ReadinessWatch {
  const samples: ReadySample[] = [];
  let stopped = false;
  const loops = targets.map(async ({ app, url }) => {
    while (!stopped) {
      const at = Date.now();
      let status = 0;
      let down: string[] = [];
      try {
        const response = await fetch(`${url}/ready`, {
          headers: { [INTERNAL_TOKEN_HEADER]: internalToken },
          signal: AbortSignal.timeout(2_000),
        });
        status = response.status;
        const body = (await response.json().catch(() => ({}))) as { down?: unknown };
        if (Array.isArray(body.down)) down = body.down.map(String);
      } catch {
        // No answer within 2 s: recorded as status 0.
      }
      samples.push({ at, app, status, down });
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(0, intervalMs - (Date.now() - at))),
      );
    }
  });
  return {
    samples,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

export interface ReadinessReport {
  /** What any instance's /ready named as down while the fault lasted (and 1 s after). */
  namedDown: string[];
  /** Whether an instance answered 503 naming `dependency` while the fault lasted. */
  namedTheDependency: boolean;
  /** From the fault's end until every instance answered 200 after its last other answer up to 10 s after the end. */
  readyAgainMs: number | undefined;
  /** Instances not ready at the last sample. */
  stillDown: string[];
  /** Per instance not steadily ready after the fault: its last answer other than 200. */
  lastNotReady: Record<string, string>;
  /** Per instance, its answers other than 200 more than 10 s after the end (flaps). */
  later: Record<string, string>;
  /** Per instance, the statuses its /ready answered while the fault lasted: `503×4 200×2`. */
  statusesDuring: Record<string, string>;
}

export function readinessAround(
  samples: readonly ReadySample[],
  fault: { start: number; end: number },
  until: number,
  dependency: string | undefined,
): ReadinessReport {
  const during = samples.filter(
    (sample) => sample.at >= fault.start && sample.at <= fault.end + 1_000,
  );
  const namedDown = [
    ...new Set(during.flatMap((sample) => sample.down.map((what) => `${sample.app} → ${what}`))),
  ];
  const namedTheDependency =
    dependency !== undefined &&
    during.some(
      (sample) => sample.status === 503 && sample.down.some((what) => what.includes(dependency)),
    );
  // Not ready up to 10 s after the end counts against the fault: each instance must answer
  // 200 after its last such answer, within the 10 s. Not ready later (a flap) is reported apart.
  const horizon = fault.end + 10_000;
  let readyAgainMs: number | undefined = 0;
  const stillDown: string[] = [];
  const lastNotReady: Record<string, string> = {};
  const later: Record<string, string> = {};
  const describe = (sample: ReadySample) =>
    `${sample.status || 'no answer'} at t+${((sample.at - fault.end) / 1000).toFixed(1)}s after the end${sample.down.length ? ` naming ${sample.down.join(', ')}` : ''}`;
  for (const app of new Set(samples.map((sample) => sample.app))) {
    const mine = samples.filter(
      (sample) => sample.app === app && sample.at >= fault.start && sample.at <= until,
    );
    const flaps = mine.filter((sample) => sample.status !== 200 && sample.at > horizon);
    if (flaps.length > 0) later[app] = `${flaps.length}×, last ${describe(flaps.at(-1)!)}`;
    const lastBad = mine.filter((sample) => sample.status !== 200 && sample.at <= horizon).at(-1);
    if (!lastBad) continue;
    lastNotReady[app] = describe(lastBad);
    const next = mine.find((sample) => sample.at > lastBad.at && sample.status === 200);
    if (!next) {
      stillDown.push(app);
      readyAgainMs = undefined;
    } else if (readyAgainMs !== undefined)
      readyAgainMs = Math.max(readyAgainMs, next.at - fault.end, 0);
  }
  const statusesDuring: Record<string, string> = {};
  for (const app of new Set(samples.map((sample) => sample.app))) {
    const counts = new Map<number, number>();
    for (const sample of during.filter((candidate) => candidate.app === app))
      counts.set(sample.status, (counts.get(sample.status) ?? 0) + 1);
    statusesDuring[app] = [...counts]
      .map(([status, count]) => `${status || 'no answer'}×${count}`)
      .join(' ');
  }
  return {
    namedDown,
    namedTheDependency,
    readyAgainMs,
    stillDown,
    lastNotReady,
    later,
    statusesDuring,
  };
}
