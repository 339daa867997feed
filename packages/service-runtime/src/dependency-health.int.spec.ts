import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkGrpcHealth,
  createGrpcServer,
  grpcHealthReport,
  type GrpcServer,
} from '@platform/grpc';
import { createLogger } from '@platform/logger';
import { createRedis, type Redis } from '@platform/redis';
import { createTcpProxy, eventually, urlThrough, type TcpProxy } from '@platform/testing';
import { monitorDependencies, type DependencyMonitor } from './dependency-monitor';

const redisUrl = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');

/** Log lines the service wrote, parsed. */
function logSink() {
  const lines: { msg: string; dependency?: string; level: number }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  return { lines, logger: createLogger({ name: 'health-test', level: 'info', destination }) };
}

describe('a service reporting its dependencies through gRPC health', () => {
  const sink = logSink();
  let proxy: TcpProxy;
  let redis: Redis;
  let monitor: DependencyMonitor;
  let server: GrpcServer;
  let address: string;
  let redisProbes = 0;

  beforeAll(async () => {
    proxy = await createTcpProxy({
      host: redisUrl.hostname,
      port: Number(redisUrl.port || 6379),
    });
    redis = await createRedis({
      url: urlThrough(redisUrl, proxy.port),
      keyPrefix: `test:health-${randomBytes(4).toString('hex')}:`,
      logger: sink.logger,
    });
    monitor = monitorDependencies({
      checks: [
        {
          name: 'redis',
          check: () => {
            redisProbes += 1;
            return redis.ping();
          },
        },
        { name: 'rabbitmq', check: async () => true },
      ],
      logger: sink.logger,
      intervalMs: 200,
    });
    server = createGrpcServer({
      logger: sink.logger,
      internalToken: 'test-token',
      services: [],
    });
    // As serveGrpc wires them.
    monitor.onChange((name, up) => server.setDependencyStatus(name, up));
    address = `127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
  });

  afterAll(async () => {
    monitor.stop();
    await server.close(1_000);
    redis.disconnect();
    await proxy.close();
  });

  const report = () => grpcHealthReport(address, ['postgresql', 'redis', 'rabbitmq']);

  it('is NOT_SERVING, naming redis, while Redis is cut off, and SERVING again once it is back', async () => {
    expect(await report()).toEqual({ serving: true, down: [] });

    proxy.cut();
    const cutAt = Date.now();
    await eventually(async () =>
      expect(await report()).toEqual({ serving: false, down: ['redis'] }),
    );
    expect(Date.now() - cutAt).toBeLessThan(2_000);
    // The overall status, which a Kubernetes readiness probe asks, says only that the server
    // takes calls: a dependency every instance shares being down must not empty the Service.
    expect(await checkGrpcHealth(address)).toBe(true);

    // Still down three probes later: logged once, not once per probe.
    const probed = redisProbes;
    await eventually(() => expect(redisProbes).toBeGreaterThanOrEqual(probed + 3));
    proxy.restore();
    const restoredAt = Date.now();
    await eventually(async () => expect(await report()).toEqual({ serving: true, down: [] }));
    expect(Date.now() - restoredAt).toBeLessThan(3_000);

    const probeLines = sink.lines.filter((line) => line.dependency === 'redis');
    expect(probeLines.map((line) => line.msg)).toEqual(['redis is down', 'redis is back']);
  });

  it('is NOT_SERVING once it stops listening, whatever its dependencies', async () => {
    const other = createGrpcServer({
      logger: sink.logger,
      internalToken: 'test-token',
      services: [],
    });
    const port = await other.listen('127.0.0.1', 0);
    other.setDependencyStatus('redis', true);
    expect((await grpcHealthReport(`127.0.0.1:${port}`, ['redis'])).serving).toBe(true);
    await other.close(1_000);
    expect(await grpcHealthReport(`127.0.0.1:${port}`, ['redis'])).toEqual({
      serving: false,
      down: [],
    });
  });
});
