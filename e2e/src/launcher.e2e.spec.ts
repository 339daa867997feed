import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRun, freePort, type TestRun } from '@platform/testing';
import { graphql } from './graphql.client';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Launch {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs `npm start`'s script the way a user's terminal does, with an isolated environment. */
function launch(env: Record<string, string>, args: readonly string[] = []): Launch {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env['PATH'], INTERNAL_PORTS: 'free', START_SKIP_BUILD: 'true', ...env },
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => text, exited };
}

async function waitForLine(
  launched: Launch,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(launched.output());
    if (match) return match;
    if (launched.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no line matching ${String(pattern)}; output:\n${launched.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The launcher's children that run an app bundle. */
function appPids(launcherPid: number, pattern = 'dist/main.js'): number[] {
  const result = spawnSync('pgrep', ['-f', '-P', String(launcherPid), pattern], {
    encoding: 'utf8',
  });
  return result.stdout.split('\n').filter(Boolean).map(Number);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  let run: TestRun;
  let env: Record<string, string>;

  beforeAll(async () => {
    run = await createTestRun();
    // A database that does not exist yet: the launcher creates and migrates it.
    const url = new URL(run.databaseUrl);
    url.pathname = `${url.pathname}_launcher`;
    env = { ...run.env, DATABASE_URL: url.toString(), LOG_LEVEL: 'warn' };
  });

  afterAll(async () => {
    const url = new URL(env.DATABASE_URL!);
    url.pathname = '/postgres';
    spawnSync('psql', [
      url.toString(),
      '-c',
      `DROP DATABASE IF EXISTS "${run.databaseUrl.split('/').pop()}_launcher" WITH (FORCE)`,
    ]);
    await run.close();
  });

  it('starts everything, prints the gateway URL, and Ctrl-C leaves no process behind', async () => {
    const port = await freePort();
    const launched = launch({ ...env, GATEWAY_PORT: String(port) });
    const [, url] = await waitForLine(
      launched,
      /gateway ready at (http:\/\/localhost:\d+)\/graphql/,
      90_000,
    );
    expect(url).toBe(`http://localhost:${port}`);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect(await graphql(url!, '{ me { id } }')).toEqual({ data: { me: null } });

    const children = appPids(launched.child.pid!);
    expect(children).toHaveLength(8);
    launched.child.kill('SIGINT');
    expect(await launched.exited).toBe(0);
    expect(children.filter(isAlive)).toEqual([]);
  });

  it('starts two instances of every app with --replicas 2, each gateway answering, and Ctrl-C stops all', async () => {
    const launched = launch(env, ['--replicas', '2']);
    const [, urls] = await waitForLine(
      launched,
      /2 instances of every app; gateways ready at (\S+, \S+)/,
      180_000,
    );
    const gateways = urls!.split(', ').map((url) => url.replace(/\/graphql$/, ''));
    expect(new Set(gateways).size).toBe(2);
    for (const gateway of gateways) {
      expect((await fetch(`${gateway}/ready`)).status).toBe(200);
      expect(await graphql(gateway, '{ me { id } }')).toEqual({ data: { me: null } });
    }
    const children = appPids(launched.child.pid!);
    expect(children).toHaveLength(16);
    launched.child.kill('SIGINT');
    expect(await launched.exited).toBe(0);
    expect(children.filter(isAlive)).toEqual([]);
  }, 240_000);

  it('says which app died and why, and stops the others', async () => {
    const launched = launch({ ...env, GATEWAY_PORT: String(await freePort()) });
    await waitForLine(launched, /gateway ready at/, 90_000);
    const children = appPids(launched.child.pid!);
    const [victim] = appPids(launched.child.pid!, 'services/permission/dist/main.js');
    process.kill(victim!, 'SIGKILL');
    expect(await launched.exited).toBe(1);
    expect(launched.output()).toMatch(/permission-service exited unexpectedly \(SIGKILL\)/);
    expect(children.filter(isAlive)).toEqual([]);
  });

  it('leaves no process behind even when the launcher itself is killed', async () => {
    const launched = launch({ ...env, GATEWAY_PORT: String(await freePort()) });
    await waitForLine(launched, /gateway ready at/, 90_000);
    const children = appPids(launched.child.pid!);
    expect(children).toHaveLength(8);
    launched.child.kill('SIGKILL');
    await launched.exited;
    const deadline = Date.now() + 15_000;
    while (children.some(isAlive) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 200));
    expect(children.filter(isAlive)).toEqual([]);
  });

  it('names the dependency it cannot reach, its address and how to start it', async () => {
    const launched = launch({
      ...env,
      REDIS_URL: 'redis://127.0.0.1:1',
      GATEWAY_PORT: String(await freePort()),
    });
    expect(await launched.exited).toBe(1);
    expect(launched.output()).toMatch(/Redis is not reachable at 127\.0\.0\.1:1/);
    expect(launched.output()).toMatch(/To fix: start it \(e\.g\. `redis-server/);
  });
});
