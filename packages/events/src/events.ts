import { randomUUID } from 'node:crypto';
import { z } from 'zod';

const id = z.string().min(1);
/** A time: an ISO-8601 string on the wire (as `JSON.stringify` writes a Date), a Date once parsed. */
const isoDate = z.iso.datetime().transform((text) => new Date(text));

/** Why a session ended (auth.session_revoked). */
const sessionRevocationReason = z.enum([
  'logout',
  'revoked',
  'logout_all',
  'refresh_token_reuse',
  'password_changed',
  'password_reset',
  'user_disabled',
  'user_deleted',
  'session_limit',
]);

export const SESSION_REVOCATION_REASONS = sessionRevocationReason.options;

/**
 * Every event the platform publishes: routing key = type. A payload change that is not
 * backwards compatible gets a new version; consumers read the version they know.
 */
export const eventContracts = {
  'user.registered': {
    version: 1,
    payload: z.object({ userId: id, email: z.string(), displayName: z.string() }),
  },
  'user.updated': {
    version: 1,
    payload: z.object({ userId: id, displayName: z.string() }),
  },
  'user.status_changed': {
    version: 1,
    payload: z.object({ userId: id, status: z.enum(['ACTIVE', 'DISABLED']) }),
  },
  'user.deleted': { version: 1, payload: z.object({ userId: id }) },
  'auth.password_changed': { version: 1, payload: z.object({ userId: id }) },
  /**
   * A way to sign in changed (a second factor, a passkey, a linked OpenID Connect account), or a
   * recovery code was used: a security notice.
   */
  'auth.mfa_changed': {
    version: 1,
    payload: z.object({
      userId: id,
      change: z.enum([
        'totp_enabled',
        'totp_disabled',
        'recovery_codes_regenerated',
        'recovery_code_used',
        'passkey_added',
        'passkey_removed',
        'oidc_linked',
        'oidc_unlinked',
      ]),
      /**
       * Whether, after this change, the user has a second factor (a confirmed TOTP factor or a
       * passkey). Absent only in events written before it was added.
       */
      mfaEnrolled: z.boolean().optional(),
      /**
       * The user's MFA state version after this change: 1, 2, ... per user, in commit order. A
       * consumer keeping the state keeps the highest version's (events may arrive late, twice, or
       * out of order). Absent only in events written before it was added.
       */
      stateVersion: z.number().int().positive().optional(),
    }),
  },
  'auth.email_verification_requested': { version: 1, payload: z.object({ userId: id }) },
  /**
   * Someone asked for a password reset by email. Written for every request, so that asking
   * about an unknown address costs what asking about a real one does; `userId` and `email`
   * (the account's address) are null when no account has the address typed, and the auth
   * service then mails nothing.
   */
  'auth.password_reset_requested': {
    version: 1,
    payload: z.object({ userId: id.nullable(), email: z.string().nullable() }),
  },
  'auth.session_revoked': {
    version: 1,
    payload: z.object({
      userId: id,
      sessionId: id,
      reason: sessionRevocationReason,
    }),
  },
  'rbac.role_assigned': {
    version: 1,
    payload: z.object({
      userId: id,
      roleId: id,
      roleName: z.string(),
      scope: z.string().nullable(),
      /** Who made the change; null when the platform did (registration, bootstrap). */
      actorId: id.nullable(),
    }),
  },
  'rbac.role_unassigned': {
    version: 1,
    payload: z.object({
      userId: id,
      roleId: id,
      roleName: z.string(),
      scope: z.string().nullable(),
      /** Who made the change; null when the platform did (registration, bootstrap). */
      actorId: id.nullable(),
    }),
  },
  'rbac.role_changed': {
    version: 1,
    payload: z.object({
      roleId: id,
      roleName: z.string(),
      change: z.enum(['created', 'updated', 'deleted']),
    }),
  },
  'notification.email_requested': {
    version: 1,
    payload: z.object({ deliveryId: id, notificationId: id }),
  },
  'notification.created': {
    // 2: the payload is the new (unread) notification in the shape live push sends it on.
    version: 2,
    payload: z.object({
      id,
      recipientId: id,
      type: z.string(),
      title: z.string(),
      body: z.string(),
      /** Any JSON value the sender attached; null when none. */
      data: z.unknown().default(null),
      /** ISO-8601 on the wire. */
      createdAt: isoDate,
    }),
  },
} as const;

export type EventType = keyof typeof eventContracts;
export type EventPayload<T extends EventType> = z.infer<(typeof eventContracts)[T]['payload']>;

export const EVENT_TYPES = Object.keys(eventContracts) as EventType[];

export interface EventEnvelope<T extends EventType = EventType> {
  readonly id: string;
  readonly type: T;
  readonly version: number;
  /** ISO-8601 */
  readonly occurredAt: string;
  readonly payload: EventPayload<T>;
}

/** One envelope per type of the union: `event.type` narrows `event.payload`. */
export type EventOf<T extends EventType> = T extends EventType ? EventEnvelope<T> : never;

export function createEvent<T extends EventType>(
  type: T,
  payload: EventPayload<T>,
): EventEnvelope<T> {
  return {
    id: randomUUID(),
    type,
    version: eventContracts[type].version,
    occurredAt: new Date().toISOString(),
    payload,
  };
}

const envelopeSchema = z.object({
  id: z.uuid(),
  type: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
  version: z.number().int().positive(),
  occurredAt: z.iso.datetime(),
  payload: z.unknown(),
});

/** Validates an event received from the broker; throws on anything malformed. */
export function parseEvent(raw: unknown): EventEnvelope {
  const envelope = envelopeSchema.parse(raw);
  const contract = eventContracts[envelope.type];
  if (envelope.version !== contract.version) {
    throw new Error(`unsupported version ${envelope.version} of ${envelope.type}`);
  }
  return { ...envelope, payload: contract.payload.parse(envelope.payload) };
}
