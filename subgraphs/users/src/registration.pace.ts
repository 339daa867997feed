/**
 * How long successful registrations take, so that one refused because the email is taken
 * answers no sooner: the refusal is told by its code (CONFLICT), which the per-address rate
 * limit bounds, never by its timing. Hashing the password alone would not do it: argon2 is
 * ~10-15 ms of a ~150 ms registration (the profile and its event, the default role, the
 * credential and the first session make up the rest), and that share moves with the load.
 * So a refusal waits until as long after its start as a recent successful registration took,
 * one picked at random, which keeps the two distributions alike as the load changes.
 */
export interface RegistrationPace {
  /** Records how long a successful registration took, in ms. */
  record(ms: number): void;
  /** Resolves once `elapsed()` (ms since the refused registration began) reaches a recent success's duration. */
  padRefusal(elapsed: () => number): Promise<void>;
}

export interface RegistrationPaceOptions {
  /** How many recent successes to draw from. */
  samples?: number;
  /** The duration assumed before any registration succeeded, in ms. */
  initialMs?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export function createRegistrationPace(options: RegistrationPaceOptions = {}): RegistrationPace {
  const size = options.samples ?? 20;
  const random = options.random ?? Math.random;
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const recent: number[] = [];
  let next = 0;

  return {
    record(ms) {
      recent[next] = ms;
      next = (next + 1) % size;
    },
    async padRefusal(elapsed) {
      const target = recent.length
        ? recent[Math.floor(random() * recent.length)]!
        : (options.initialMs ?? 150);
      const remaining = target - elapsed();
      if (remaining > 0) await sleep(remaining);
    },
  };
}
