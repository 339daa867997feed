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
  /** The gateway's base URL. */
  gateway: string;
  /** The bootstrap admin, signed in. */
  admin: SignedIn;
}

/**
 * All eight apps on an isolated run (own database, Redis prefix, exchange), with the
 * bootstrap admin signed in and no per-address rate limit; `env` adds to an app's
 * environment. Stop it with `stopPlatform`.
 */
export async function startPlatform(
  env: Partial<Record<AppName, Record<string, string>>> = {},
): Promise<Platform> {
  const run = await createTestRun();
  let apps: AppCluster | undefined;
  try {
    apps = await startApps(run, APP_NAMES, {
      ...env,
      'users-subgraph': {
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        RATE_LIMIT_PER_ADDRESS: '0',
        ...env['users-subgraph'],
      },
    });
    const gateway = apps.httpUrl('gateway');
    const admin = await eventually(() => signIn(gateway, ADMIN.email, ADMIN.password), 20_000);
    return { run, apps, gateway, admin };
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
