import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '@platform/apps';

/**
 * A redis-server of a test's own, keeping nothing on disk, so that a test can lose all of
 * its data (`crash` then `start`) without touching the machine's shared Redis.
 */
export interface TestRedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** The server's process id (changes with every `start`). */
  readonly pid: number | undefined;
  /** SIGKILL, as a crash or an OOM kill would end it: everything it held is gone. */
  crash(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

const BINARY = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';

async function answersPing(port: number): Promise<boolean> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** Starts `redis-server --save "" --appendonly no` on a free port of 127.0.0.1. */
export async function startRedisServer(
  options: { port?: number; timeoutMs?: number } = {},
): Promise<TestRedisServer> {
  const port = options.port ?? (await freePort());
  const timeoutMs = options.timeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const output: string[] = [];

  const dir = await mkdtemp(join(tmpdir(), 'test-redis-'));

  async function start(): Promise<void> {
    await rm(join(dir, 'dump.rdb'), { force: true });
    const server = spawn(
      BINARY,
      ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      // A replica writes what it syncs to its working directory (and a start would load it):
      // a directory of this server's own, emptied before every start.
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
    );
    child = server;
    let ended = false;
    exited = new Promise((resolve) => {
      server.once('exit', () => {
        ended = true;
        resolve();
      });
    });
    for (const stream of [server.stdout, server.stderr])
      stream?.on('data', (chunk: Buffer) => output.push(...chunk.toString().split('\n')));
    const deadline = Date.now() + timeoutMs;
    while (!(await answersPing(port))) {
      if (ended)
        throw new Error(`redis-server on port ${port} exited:\n${output.slice(-20).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function kill(signal: NodeJS.Signals): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await exited;
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    crash: () => kill('SIGKILL'),
    start,
    async stop() {
      await kill('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
