import type { IncomingMessage, ServerResponse } from 'node:http';
import { grpcHealthReport } from '@platform/grpc';
import { sendJson } from '@platform/http-server';
import type { Redis } from '@platform/redis';

/** Whether a dependency answers; when not, what within it is down, if it says (`postgresql`). */
export type Health = { up: true } | { up: false; causes?: readonly string[] };

export interface Dependency {
  name: string;
  check: () => Promise<Health>;
}

const UP: Health = { up: true };
const DOWN: Health = { up: false };

/** A subgraph: up while one of its instances' `/health` answers 200 (a URL per instance). */
export function httpDependency(
  name: string,
  urls: readonly string[],
  timeoutMs = 1_000,
): Dependency {
  async function answers(url: string): Promise<boolean> {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      return response.ok;
    } catch {
      return false;
    }
  }
  return {
    name,
    check: async () => ((await Promise.all(urls.map(answers))).some(Boolean) ? UP : DOWN),
  };
}

/** A domain service: up while its health service says SERVING; when not, which of its dependencies are down. */
export function grpcDependency(name: string, address: string): Dependency {
  return {
    name,
    check: async () => {
      const { serving, down } = await grpcHealthReport(address);
      return serving ? UP : { up: false, causes: down };
    },
  };
}

/** The gateway's own Redis (session revocations, request budgets): up while it answers PING. */
export function redisDependency(name: string, redis: Pick<Redis, 'ping'>, timeoutMs = 1_000) {
  return {
    name,
    check: async (): Promise<Health> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          redis.ping(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
          }),
        ]);
        return UP;
      } catch {
        return DOWN;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Asks every dependency at once; ready only when all answer. `down` names each that does not,
 * as `auth-service: postgresql` when a service says which of its own dependencies is down.
 */
export async function checkReadiness(dependencies: readonly Dependency[]) {
  const results = await Promise.all(
    dependencies.map(async (dependency) => [dependency.name, await dependency.check()] as const),
  );
  const down = results.flatMap(([name, health]) =>
    health.up
      ? []
      : health.causes?.length
        ? health.causes.map((cause) => `${name}: ${cause}`)
        : [name],
  );
  return {
    ready: down.length === 0,
    body: {
      status: down.length === 0 ? 'ready' : 'unavailable',
      down,
      checks: Object.fromEntries(
        results.map(([name, health]) => [name, health.up ? 'up' : 'down']),
      ),
    },
  };
}

/**
 * `GET /ready`: 200 or 503. Which dependency is down is told only to callers `mayKnow` admits
 * (in production: those presenting the internal credential), not to the internet.
 */
export function readinessRoute(
  dependencies: readonly Dependency[],
  mayKnow: (req: IncomingMessage) => boolean,
) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const { ready, body } = await checkReadiness(dependencies);
    sendJson(res, ready ? 200 : 503, mayKnow(req) ? body : { status: body.status });
  };
}
