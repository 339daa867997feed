import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { userV1 } from '@platform/proto';
import { validateEmail, validatePassword } from '@platform/validation';
import { findUserByEmail, type IdentityClients } from './auth.resolvers';

const isCode = (error: unknown, code: string) => error instanceof AppError && error.code === code;

/**
 * Makes sure the bootstrap admin exists and holds `admin`. An existing account keeps its
 * password; several instances starting at once converge on one account.
 */
export async function ensureBootstrapAdmin(
  clients: IdentityClients,
  admin: { email: string; password: string },
  logger: Logger,
): Promise<void> {
  const email = validateEmail(admin.email, 'ADMIN_EMAIL');
  const password = validatePassword(admin.password, 'ADMIN_PASSWORD');
  const find = () => findUserByEmail(clients.users, email);

  let user: userV1.User | undefined = await find();
  if (!user) {
    try {
      user = (await clients.users.createUser({ email, displayName: 'Administrator' })).user;
    } catch (error) {
      if (!isCode(error, 'CONFLICT')) throw error;
      user = await find();
    }
    if (!user) throw new Error('bootstrap admin vanished while being created');
    await clients.auth
      .createCredential({ userId: user.id, password, userAgent: 'bootstrap' })
      .catch((error: unknown) => {
        if (!isCode(error, 'CONFLICT')) throw error;
      });
    logger.info({ email }, 'bootstrap admin created');
  }
  // The platform itself assigns it (no actor).
  await clients.permissions.assignRole({
    actorId: '',
    userId: user.id,
    roleId: '',
    roleName: 'admin',
    scope: '',
  });
}

/** Retries until the services answer: the subgraph may start before them. */
export function startBootstrapAdmin(
  clients: IdentityClients,
  admin: { email: string; password: string },
  logger: Logger,
): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const attempt = (delayMs: number) => {
    ensureBootstrapAdmin(clients, admin, logger).then(
      () => logger.info('bootstrap admin ready'),
      (error: unknown) => {
        if (error instanceof AppError && error.code === 'BAD_USER_INPUT') {
          logger.error(
            { reason: error.message },
            'bootstrap admin not created: fix ADMIN_EMAIL / ADMIN_PASSWORD',
          );
          return;
        }
        logger.warn({ err: error, retryInMs: delayMs }, 'bootstrap admin not ready; retrying');
        if (!stopped) timer = setTimeout(() => attempt(Math.min(delayMs * 2, 30_000)), delayMs);
      },
    );
  };
  attempt(500);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
