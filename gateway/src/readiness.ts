import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkGrpcHealth } from '@platform/grpc';
import { sendJson } from '@platform/http-server';

export interface Dependency {
  name: string;
  check: () => Promise<boolean>;
}

export function httpDependency(name: string, url: string, timeoutMs = 1_000): Dependency {
  return {
    name,
    check: async () => {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        return response.ok;
      } catch {
        return false;
      }
    },
  };
}

export function grpcDependency(name: string, address: string): Dependency {
  return { name, check: () => checkGrpcHealth(address) };
}

/** Asks every dependency at once; ready only when all answer. */
export async function checkReadiness(dependencies: readonly Dependency[]) {
  const results = await Promise.all(
    dependencies.map(async (dependency) => [dependency.name, await dependency.check()] as const),
  );
  const down = results.filter(([, up]) => !up).map(([name]) => name);
  return {
    ready: down.length === 0,
    body: {
      status: down.length === 0 ? 'ready' : 'unavailable',
      down,
      checks: Object.fromEntries(results.map(([name, up]) => [name, up ? 'up' : 'down'])),
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
