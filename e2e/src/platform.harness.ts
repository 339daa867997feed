import { APP_NAMES } from '@platform/apps';
import type { AppName } from '@platform/config';
import {
  createTestRun,
  eventually,
  startApps,
  type AppCluster,
  type TestRun,
} from '@platform/testing';
import { signIn, type SignedIn } from './graphql.client';

/** The bootstrap admin every platform started here has. */
export const ADMIN = { email: 'root@example.com', password: 'admin bootstrap secret' };

export interface Platform {
  run: TestRun;
  apps: AppCluster;
  /** The gateway's base URL (its first instance). */
  gateway: string;
  /** The base URL of every gateway instance. */
  gateways: string[];
  /** The bootstrap admin, signed in. */
  admin: SignedIn;
}

type AppEnv = Partial<Record<AppName, Record<string, string>>>;

/**
 * All eight apps (`options.instances` of each) on an isolated run (own database, Redis prefix, exchange), with the
 * bootstrap admin signed in and no per-address rate limit; `env` adds to an app's
 * environment (or is made from the run, e.g. to reach its database through a proxy). Stop
 * it with `stopPlatform`.
 */
export async function startPlatform(
  envOrFromRun: AppEnv | ((run: TestRun) => AppEnv) = {},
  options: {
    /** Instances of every app (default 1), each on its own ports, callers given them all. */
    instances?: number;
    /** How long each instance may take to come up. */
    startTimeoutMs?: number;
  } = {},
): Promise<Platform> {
  const run = await createTestRun();
  let apps: AppCluster | undefined;
  try {
    const env = typeof envOrFromRun === 'function' ? envOrFromRun(run) : envOrFromRun;
    apps = await startApps(
      run,
      APP_NAMES,
      {
        ...env,
        'users-subgraph': {
          ADMIN_EMAIL: ADMIN.email,
          ADMIN_PASSWORD: ADMIN.password,
          RATE_LIMIT_PER_ADDRESS: '0',
          ...env['users-subgraph'],
        },
      },
      { instances: options.instances, startTimeoutMs: options.startTimeoutMs },
    );
    const gateway = apps.httpUrl('gateway');
    const gateways = Array.from({ length: apps.instances('gateway') }, (_, instance) =>
      apps!.httpUrl('gateway', instance),
    );
    const admin = await eventually(() => signIn(gateway, ADMIN.email, ADMIN.password), 20_000);
    return { run, apps, gateway, gateways, admin };
  } catch (error) {
    await apps?.stopAll();
    await run.close();
    throw error;
  }
}

export async function stopPlatform(platform: Platform | undefined): Promise<void> {
  await platform?.apps.stopAll();
  await platform?.run.close();
}
