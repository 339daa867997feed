import type { Logger } from '@platform/logger';

/** One dependency a service needs to answer, and how to tell it answers. */
export interface DependencyCheck {
  /** As reported through gRPC health: `postgresql`, `redis`, `rabbitmq`. */
  name: string;
  /** Resolves true (or anything but false) when the dependency answers; false or a rejection when not. */
  check: () => Promise<unknown>;
}

export interface DependencyMonitor {
  /** Each dependency's last known state (true: up); every one is up until a probe says otherwise. */
  statuses(): ReadonlyMap<string, boolean>;
  /** Called with each dependency's current state at once, then on every change. */
  onChange(listener: (name: string, up: boolean) => void): void;
  stop(): void;
}

/**
 * Probes every dependency every `intervalMs` (each probe given `timeoutMs`), keeps their
 * states and tells listeners when one changes; logs once when a dependency goes down and once
 * when it is back (with how long it was away). A dependency that refuses is down at once; one
 * that does not answer in time, at the second probe in a row. At most one check per
 * dependency is outstanding: a probe while the last check still waits waits on that one.
 */
export function monitorDependencies(options: {
  checks: readonly DependencyCheck[];
  logger: Logger;
  intervalMs?: number;
  timeoutMs?: number;
}): DependencyMonitor {
  const { checks, logger } = options;
  const intervalMs = options.intervalMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? 1_000;
  const statuses = new Map(checks.map(({ name }) => [name, true]));
  const downSince = new Map<string, number>();
  const listeners: ((name: string, up: boolean) => void)[] = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  // Probes in a row that got no answer in time, per dependency.
  const slow = new Map<string, number>();
  const NO_ANSWER = Symbol('no answer');

  // A check still waiting for its answer, per dependency: the next probe waits on it rather
  // than sending another, so a dependency that stopped answering does not pile up pings.
  const unanswered = new Map<string, Promise<unknown>>();

  function ask({ name, check }: DependencyCheck): Promise<unknown> {
    const waiting = unanswered.get(name);
    if (waiting) return waiting;
    const asked = Promise.resolve().then(check);
    unanswered.set(name, asked);
    const answered = () => {
      if (unanswered.get(name) === asked) unanswered.delete(name);
    };
    asked.then(answered, answered);
    return asked;
  }

  async function probe(dependency: DependencyCheck): Promise<void> {
    const { name } = dependency;
    let failure: unknown;
    let late = false;
    let timeout: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        ask(dependency),
        new Promise((resolve) => {
          timeout = setTimeout(() => resolve(NO_ANSWER), timeoutMs);
        }),
      ]);
      late = answer === NO_ANSWER;
      if (late) failure = new Error(`no answer in ${timeoutMs} ms`);
      else if (answer === false) failure = new Error('not connected');
    } catch (error) {
      failure = error ?? new Error('probe failed');
    } finally {
      clearTimeout(timeout);
    }
    // A refusal counts at once; a slow answer only twice in a row (a busy process is not an
    // outage).
    slow.set(name, late ? (slow.get(name) ?? 0) + 1 : 0);
    const up = failure === undefined || (late && (slow.get(name) ?? 0) < 2);
    if (stopped || statuses.get(name) === up) return;
    statuses.set(name, up);
    if (up) {
      const downForMs = Date.now() - (downSince.get(name) ?? Date.now());
      downSince.delete(name);
      logger.info({ dependency: name, downForMs }, `${name} is back`);
    } else {
      downSince.set(name, Date.now());
      logger.error({ dependency: name, err: failure }, `${name} is down`);
    }
    for (const listener of listeners) listener(name, up);
  }

  async function tick(): Promise<void> {
    await Promise.all(checks.map(probe));
    if (!stopped) {
      timer = setTimeout(() => void tick(), intervalMs);
      timer.unref();
    }
  }
  timer = setTimeout(() => void tick(), intervalMs);
  timer.unref();

  return {
    statuses: () => statuses,
    onChange(listener) {
      listeners.push(listener);
      for (const [name, up] of statuses) listener(name, up);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
