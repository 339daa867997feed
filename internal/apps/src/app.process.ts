import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT, type AppDefinition } from './apps.registry';

export interface AppProcessOptions {
  app: AppDefinition;
  env: Record<string, string>;
  /** Extra Node.js flags (e.g. `--cpu-prof`, which NODE_OPTIONS does not accept). */
  nodeArgs?: readonly string[];
  /** Receives each line the app prints (stdout and stderr). */
  onLine: (line: string, stream: 'stdout' | 'stderr') => void;
}

export interface AppProcess {
  readonly app: AppDefinition;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process has ended. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts an app's built bundle (`<dir>/dist/main.js`) as a child process. */
export function startAppProcess(options: AppProcessOptions): AppProcess {
  const { app } = options;
  const child = spawn(
    process.execPath,
    ['--enable-source-maps', ...(options.nodeArgs ?? []), join(REPO_ROOT, app.dir, 'dist/main.js')],
    {
      cwd: join(REPO_ROOT, app.dir),
      env: options.env,
      // The IPC channel tells the app when this process dies (see @platform/lifecycle).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    const name = stream === child.stdout ? 'stdout' : 'stderr';
    let buffered = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) options.onLine(line, name);
    });
    stream?.on('end', () => {
      if (buffered) options.onLine(buffered, name);
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    app,
    child,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
