/**
 * A promise a test resolves when it chooses, to hold one side of a race at a chosen point:
 * `await gate.opened` waits there, `gate.open()` lets it through (again: no effect).
 */
export interface Latch {
  readonly opened: Promise<void>;
  open(): void;
}

export function latch(): Latch {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Work held open at a point of its own until released, e.g. a transaction keeping its locks. */
export interface Held {
  /** Lets the work go on and resolves once it has ended (its error, if it failed). */
  release(): Promise<void>;
}

/**
 * Starts `work` and resolves once it calls `hold` (or ends first, failed or not); `hold`
 * returns when `release` is called. For a transaction that takes a lock, then keeps it:
 * `holdOpen((hold) => db.$transaction(async (tx) => { await lock(tx); await hold(); }))`.
 */
export async function holdOpen(
  work: (hold: () => Promise<void>) => Promise<unknown>,
): Promise<Held> {
  const reached = latch();
  const released = latch();
  const done = work(async () => {
    reached.open();
    await released.opened;
  });
  await Promise.race([reached.opened, done]);
  return {
    async release() {
      released.open();
      await done;
    },
  };
}
