// Rows of the auth schema written straight into a test database, for the repository and
// use-case tests against PostgreSQL (each factory takes what the test cares about).
import { randomUUID } from 'node:crypto';
import type {
  Credential,
  Database,
  OneTimeToken,
  OneTimeTokenPurpose,
  Session,
  SigningKey,
} from '@platform/db';
import type { EventEnvelope } from '@platform/events';
import { newOpaqueToken } from '../opaque-token';

const HOUR_MS = 3600 * 1000;
const later = (ms: number, from = new Date()) => new Date(from.getTime() + ms);

export interface SessionFields {
  userId?: string;
  userAgent?: string | null;
  createdAt?: Date;
  idleExpiresAt?: Date;
  expiresAt?: Date;
  revokedAt?: Date | null;
  /** When its refresh token was rotated (with a successor); null: the token is current. */
  rotatedAt?: Date | null;
}

export interface AuthFactories {
  /** A session (active for an hour unless told otherwise) and its refresh token. */
  newSession(fields?: SessionFields): Promise<{ session: Session; refreshToken: string }>;
  newCredential(fields?: { userId?: string; passwordHash?: string }): Promise<Credential>;
  /** A mailed token (valid for an hour unless told otherwise) and the row of its hash. */
  newOneTimeToken(fields?: {
    userId?: string;
    purpose?: OneTimeTokenPurpose;
    expiresAt?: Date;
    usedAt?: Date | null;
  }): Promise<{ token: string; row: OneTimeToken }>;
  newSigningKey(fields?: { createdAt?: Date; retiredAt?: Date | null }): Promise<SigningKey>;
  /** The events in the auth outbox, oldest first, of one type if given. */
  outboxEvents(type?: EventEnvelope['type']): Promise<EventEnvelope[]>;
}

export function createAuthFactories(db: Database): AuthFactories {
  return {
    async newSession(fields = {}) {
      const createdAt = fields.createdAt ?? new Date();
      const { token, hash } = newOpaqueToken();
      const session = await db.session.create({
        data: {
          userId: fields.userId ?? randomUUID(),
          userAgent: fields.userAgent ?? null,
          createdAt,
          lastUsedAt: createdAt,
          idleExpiresAt: fields.idleExpiresAt ?? later(HOUR_MS, createdAt),
          expiresAt: fields.expiresAt ?? later(24 * HOUR_MS, createdAt),
          revokedAt: fields.revokedAt ?? null,
          revokedReason: fields.revokedAt ? 'revoked' : null,
          refreshTokens: { create: { tokenHash: hash, rotatedAt: fields.rotatedAt ?? null } },
        },
      });
      if (fields.rotatedAt) {
        await db.refreshToken.create({
          data: { tokenHash: newOpaqueToken().hash, sessionId: session.id, generation: 1 },
        });
      }
      return { session, refreshToken: token };
    },

    newCredential(fields = {}) {
      return db.credential.create({
        data: {
          userId: fields.userId ?? randomUUID(),
          passwordHash: fields.passwordHash ?? 'hashed:correct horse battery',
        },
      });
    },

    async newOneTimeToken(fields = {}) {
      const { token, hash } = newOpaqueToken();
      const row = await db.oneTimeToken.create({
        data: {
          tokenHash: hash,
          userId: fields.userId ?? randomUUID(),
          purpose: fields.purpose ?? 'VERIFY_EMAIL',
          expiresAt: fields.expiresAt ?? later(HOUR_MS),
          usedAt: fields.usedAt ?? null,
        },
      });
      return { token, row };
    },

    newSigningKey(fields = {}) {
      const kid = randomUUID();
      return db.signingKey.create({
        data: {
          kid,
          algorithm: 'ES256',
          publicJwk: { kid, kty: 'EC', crv: 'P-256', x: 'x', y: 'y', alg: 'ES256', use: 'sig' },
          privateKeyPem: 'not a real key',
          createdAt: fields.createdAt ?? new Date(),
          retiredAt: fields.retiredAt ?? null,
        },
      });
    },

    async outboxEvents(type) {
      const rows = await db.authOutboxEvent.findMany({
        where: type ? { type } : {},
        orderBy: { seq: 'asc' },
      });
      return rows.map((row) => row.envelope as unknown as EventEnvelope);
    },
  };
}
