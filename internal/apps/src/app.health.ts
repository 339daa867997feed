import { get } from 'node:http';
import { checkGrpcHealth } from '@platform/grpc';
import type { AppDefinition } from './apps.registry';

/** Whether the app answers its health check: gRPC health for services, GET /health otherwise. */
export async function isUp(app: AppDefinition, port: number): Promise<boolean> {
  if (app.kind === 'service') return checkGrpcHealth(`127.0.0.1:${port}`, 500);
  // A connection of its own, closed after the answer: none left idle at the app (an app
  // shutting down waits out its idle grace for every idle keep-alive connection it holds).
  return new Promise((resolve) => {
    const request = get(
      { host: '127.0.0.1', port, path: '/health', agent: false, timeout: 500 },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
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
