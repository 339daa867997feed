import type { EventPayload } from '@platform/events';
import { isOutageFailure, type MessageBroker } from '@platform/messaging';
import type { EmailDeliveryService } from './email-delivery.service';
import type { NotificationService } from './notification.service';

const WELCOME_CONSUMER = 'notification.welcome';
const ROLE_CONSUMER = 'notification.role-changed';
const SECURITY_CONSUMER = 'notification.security';
const USER_DELETED_CONSUMER = 'notification.user-deleted';
const EMAIL_CONSUMER = 'notification.email';

/** Nodemailer marks every SMTP failure (connection, timeout, refusal) with the command it was on. */
function isMailTransportError(error: unknown): boolean {
  return error instanceof Error && typeof (error as { command?: unknown }).command === 'string';
}

const RESET_HINT = "If this wasn't you, reset your password and sign out everywhere now.";
/** What each change to a second factor tells the user (never a code or a secret). */
const MFA_NOTICES: Record<
  EventPayload<'auth.mfa_changed'>['change'],
  { title: string; body: string }
> = {
  totp_enabled: {
    title: 'Two-step sign-in was turned on',
    body: `Signing in now needs a code from your authenticator app. ${RESET_HINT}`,
  },
  totp_disabled: {
    title: 'Two-step sign-in was turned off',
    body: `Your password alone now signs you in, and your recovery codes no longer work. ${RESET_HINT}`,
  },
  recovery_codes_regenerated: {
    title: 'New recovery codes were made',
    body: `Your earlier recovery codes no longer work. ${RESET_HINT}`,
  },
  recovery_code_used: {
    title: 'A recovery code was used',
    body: `Someone signed in (or confirmed it is you) with one of your recovery codes; it cannot be used again. ${RESET_HINT}`,
  },
  passkey_added: {
    title: 'A passkey was added',
    body: `A new passkey can now sign in to your account. ${RESET_HINT}`,
  },
  passkey_removed: {
    title: 'A passkey was removed',
    body: `One of your passkeys can no longer sign in to your account. ${RESET_HINT}`,
  },
  oidc_linked: {
    title: 'An external account was linked',
    body: `An account at an external sign-in provider can now sign in to your account. ${RESET_HINT}`,
  },
  oidc_unlinked: {
    title: 'An external account was unlinked',
    body: `An account at an external sign-in provider can no longer sign in to your account. ${RESET_HINT}`,
  },
};

const inScope = (scope: string | null) => (scope ? ` in ${scope}` : '');

/** Notifications that domain events call for. Each handler is idempotent per event id. */
export async function startNotificationConsumers(deps: {
  broker: Pick<MessageBroker, 'consume'>;
  notifications: Pick<NotificationService, 'notify' | 'removeRecipient'>;
  deliveries: Pick<EmailDeliveryService, 'deliver'>;
  /** Back-off between email attempts; after the last, the message is dead-lettered. */
  emailRetryDelaysMs: readonly number[];
  /** Queues are named after the exchange, so isolated runs never share a queue. */
  queuePrefix: string;
}): Promise<void> {
  const { broker, notifications } = deps;
  const queue = (name: string) => `${deps.queuePrefix}.${name}`;

  await broker.consume({
    queue: queue(WELCOME_CONSUMER),
    events: ['user.registered'],
    handle: (event) =>
      notifications.notify(WELCOME_CONSUMER, event.id, {
        recipientId: event.payload.userId,
        type: 'welcome',
        title: `Welcome, ${event.payload.displayName}!`,
        body: 'Your account is ready.',
      }),
  });

  await broker.consume({
    queue: queue(ROLE_CONSUMER),
    events: ['rbac.role_assigned', 'rbac.role_unassigned'],
    handle: async (event) => {
      const { userId, roleId, roleName, scope, actorId } = event.payload;
      // The platform's own assignments (registration's default role) are not news.
      if (actorId === null) return;
      const assigned = event.type === 'rbac.role_assigned';
      return notifications.notify(ROLE_CONSUMER, event.id, {
        recipientId: userId,
        type: 'role_changed',
        title: assigned
          ? `You were given the role "${roleName}"${inScope(scope)}`
          : `The role "${roleName}" was taken away${inScope(scope)}`,
        body: assigned
          ? `You now hold the permissions of the role "${roleName}"${inScope(scope)}.`
          : `You no longer hold the permissions of the role "${roleName}"${inScope(scope)}.`,
        data: { roleId, roleName, scope, change: assigned ? 'assigned' : 'unassigned' },
      });
    },
  });

  await broker.consume({
    queue: queue(SECURITY_CONSUMER),
    events: ['auth.password_changed', 'auth.session_revoked', 'auth.mfa_changed'],
    handle: async (event) => {
      if (event.type === 'auth.mfa_changed')
        return notifications.notify(SECURITY_CONSUMER, event.id, {
          recipientId: event.payload.userId,
          type: 'security.mfa',
          ...MFA_NOTICES[event.payload.change],
          data: { change: event.payload.change },
        });
      if (event.type === 'auth.password_changed')
        return notifications.notify(SECURITY_CONSUMER, event.id, {
          recipientId: event.payload.userId,
          type: 'security',
          title: 'Your password was changed',
          body: "If this wasn't you, reset your password now. Your other sessions were signed out.",
        });
      // Only theft is news to the user; they ended their other sessions themselves.
      if (event.payload.reason !== 'refresh_token_reuse') return;
      return notifications.notify(SECURITY_CONSUMER, event.id, {
        recipientId: event.payload.userId,
        type: 'security',
        title: 'A session was signed out for your safety',
        body:
          'A refresh token of one of your sessions was used twice, which happens when someone ' +
          "else holds a copy. That session was signed out. If this wasn't you, change your password.",
        data: { sessionId: event.payload.sessionId },
      });
    },
  });

  // A deleted user's notifications and preferences go with them.
  await broker.consume({
    queue: queue(USER_DELETED_CONSUMER),
    events: ['user.deleted'],
    handle: (event) => notifications.removeRecipient(USER_DELETED_CONSUMER, event),
  });

  await broker.consume({
    queue: queue(EMAIL_CONSUMER),
    events: ['notification.email_requested'],
    retryDelaysMs: deps.emailRetryDelaysMs,
    // The mail server failing is this channel's own attempt (counted in the delivery row and
    // by these retries, then dead-lettered); only our database or the user service being
    // down waits without using one up.
    isOutage: (error) => isOutageFailure(error) && !isMailTransportError(error),
    handle: (event) => deps.deliveries.deliver(event.payload.deliveryId),
  });
}
