import { checkGrpcHealth } from '@platform/grpc';
import type { AppDefinition } from './apps.registry';

/** Whether the app answers its health check: gRPC health for services, GET /health otherwise. */
export async function isUp(app: AppDefinition, port: number): Promise<boolean> {
  if (app.kind === 'service') return checkGrpcHealth(`127.0.0.1:${port}`, 500);
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, {
      signal: AbortSignal.timeout(500),
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** Polls until the app is up; rejects after `timeoutMs` or as soon as `failed()` says so. */
export async function waitUntilUp(
  app: AppDefinition,
  port: number,
  options: { timeoutMs: number; failed?: () => Error | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const failure = options.failed?.();
    if (failure) throw failure;
    if (await isUp(app, port)) return;
    if (Date.now() > deadline)
      throw new Error(`${app.name} did not come up within ${options.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
