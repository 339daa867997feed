import { describe, expect, it } from 'vitest';
import { DEFAULT_PORTS } from '@platform/config';
import { APPS, appEnvironment } from './apps.registry';
import { replicaPorts } from './replica-ports';

describe(replicaPorts.name, () => {
  const counter = () => {
    let next = 30_000;
    return async () => next++;
  };

  it('puts instance n on the default ports + 100 n, the first on the defaults themselves', async () => {
    const { instancePorts, metricsPorts } = await replicaPorts({
      replicas: 2,
      ports: { ...DEFAULT_PORTS },
      free: false,
      freePort: counter(),
    });
    expect(instancePorts.gateway).toEqual([4000, 4100]);
    expect(instancePorts['users-subgraph']).toEqual([4001, 4101]);
    expect(instancePorts['user-service']).toEqual([50051, 50151]);
    expect(metricsPorts.gateway).toEqual([undefined, 9500]);
    expect(metricsPorts['notification-service']).toEqual([undefined, 9514]);
    const all = Object.values(instancePorts).flat();
    const metrics = Object.values(metricsPorts).flat().filter(Boolean);
    expect(new Set([...all, ...metrics]).size).toBe(all.length + metrics.length);
  });

  it('lists every instance in the callers’ address variables', async () => {
    const { instancePorts } = await replicaPorts({
      replicas: 2,
      ports: { ...DEFAULT_PORTS },
      free: false,
      freePort: counter(),
    });
    const gateway = APPS.find((app) => app.kind === 'gateway')!;
    const env = appEnvironment(gateway, { ...DEFAULT_PORTS }, instancePorts);
    expect(env['USERS_SUBGRAPH_URL']).toBe(
      'http://127.0.0.1:4001/graphql,http://127.0.0.1:4101/graphql',
    );
    expect(env['USER_SERVICE_ADDR']).toBe('127.0.0.1:50051,127.0.0.1:50151');
  });

  it('with free ports, keeps the first gateway’s and picks every other', async () => {
    const { instancePorts, metricsPorts } = await replicaPorts({
      replicas: 3,
      ports: { ...DEFAULT_PORTS, gateway: 5555 },
      free: true,
      freePort: counter(),
    });
    expect(instancePorts.gateway[0]).toBe(5555);
    const picked = [...Object.values(instancePorts).flat(), ...Object.values(metricsPorts).flat()];
    expect(picked.filter((port) => port !== 5555).every((port) => port! >= 30_000)).toBe(true);
    expect(new Set(picked).size).toBe(picked.length);
  });

  it('refuses a count it cannot place', async () => {
    for (const replicas of [0, 10, 1.5])
      await expect(
        replicaPorts({ replicas, ports: { ...DEFAULT_PORTS }, free: false, freePort: counter() }),
      ).rejects.toThrow(/replicas must be 1 to 9/);
  });
});
