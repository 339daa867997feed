import { flushTelemetry } from '@platform/telemetry';
import type { Logger } from '@platform/logger';

export interface LifecycleOptions {
  logger: Logger;
  /** How long teardown may take in total before the process exits anyway. */
  drainTimeoutMs: number;
  /** Defaults to `process.exit`; tests pass their own. */
  exit?: (code: number) => void;
}

export interface Lifecycle {
  /** Registers a teardown; teardowns run in reverse order of registration. */
  onShutdown(name: string, teardown: () => Promise<void> | void): void;
  /** Runs every teardown (once), then exits with `code` (non-zero if any teardown failed). */
  shutdown(reason: string, code?: number): Promise<void>;
  /**
   * Runs an app's `main`: wires SIGINT/SIGTERM and fatal errors to `shutdown`. A failing
   * `main` (or any uncaught error later) exits non-zero after tearing down what exists.
   */
  run(main: () => Promise<void>): void;
}

export function createLifecycle(options: LifecycleOptions): Lifecycle {
  const { logger, drainTimeoutMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const teardowns: { name: string; teardown: () => Promise<void> | void }[] = [];
  let shuttingDown: Promise<void> | undefined;

  async function runTeardowns(): Promise<boolean> {
    let clean = true;
    for (const { name, teardown } of teardowns.toReversed()) {
      try {
        await teardown();
        logger.debug({ resource: name }, 'closed');
      } catch (error) {
        clean = false;
        logger.error({ err: error, resource: name }, 'teardown failed');
      }
    }
    // Last: the spans of the shutdown itself go out too (a no-op when tracing is off).
    await flushTelemetry().catch((error: unknown) =>
      logger.warn({ err: error }, 'could not export the last spans'),
    );
    return clean;
  }

  function shutdown(reason: string, code = 0): Promise<void> {
    shuttingDown ??= (async () => {
      logger.info({ reason }, 'shutting down');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), drainTimeoutMs);
        timer.unref();
      });
      const outcome = await Promise.race([runTeardowns(), timedOut]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        logger.error({ drainTimeoutMs }, 'shutdown timed out; exiting with work still in flight');
        exit(code || 1);
        return;
      }
      logger.info('stopped');
      exit(outcome ? code : code || 1);
    })();
    return shuttingDown;
  }

  function fatal(error: unknown, what: string): void {
    logger.fatal({ err: error }, what);
    void shutdown(what, 1);
  }

  return {
    onShutdown(name, teardown) {
      teardowns.push({ name, teardown });
    },
    shutdown,
    run(main) {
      process.once('SIGINT', () => void shutdown('SIGINT'));
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.on('uncaughtException', (error) => fatal(error, 'uncaught exception'));
      process.on('unhandledRejection', (error) => fatal(error, 'unhandled rejection'));
      // Started by a supervisor (the launcher, the test harness) over an IPC channel: when the
      // supervisor dies, however abruptly, the channel closes and this process must not linger.
      if (process.channel) {
        process.channel.unref();
        process.once('disconnect', () => void shutdown('parent process exited'));
      }
      // Whoever reads our output is gone: stop instead of failing on every log line.
      process.stdout.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EPIPE') void shutdown('stdout closed');
      });
      main().catch((error: unknown) => fatal(error, 'failed to start'));
    },
  };
}
