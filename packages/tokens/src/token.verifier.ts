import { createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { BoundedMap } from '@platform/collections';
import { AppError } from '@platform/errors';
import { cacheMetrics } from '@platform/metrics';
import { ACCESS_TOKEN_ALGORITHM, type PublicJwk } from './token.types';

export interface Identity {
  userId: string;
  sessionId: string;
  /** When the access token expires, epoch milliseconds. */
  expiresAt: number;
}

export interface TokenVerifierOptions {
  issuer: string;
  audience: string;
  /** Fetches the current JSON Web Key Set (from the auth service). */
  fetchJwks: () => Promise<readonly PublicJwk[]>;
  /** Keys are re-fetched at most this often, also when a token names an unknown `kid`. */
  refreshIntervalMs?: number;
  /** Whether the token's session has ended (logout, revocation): such tokens are refused. */
  isRevoked?: (sessionId: string) => Promise<boolean>;
  /** How many verified tokens to remember (their signature is not checked again). */
  cacheSize?: number;
}

export interface TokenVerifier {
  /** Verifies an access token; throws UNAUTHENTICATED for anything not valid right now. */
  verify(token: string): Promise<Identity>;
  /**
   * Parses an `Authorization` header; null when there is none. It may come from a client's JSON
   * (a WebSocket's `connection_init`, a subscribe's extensions): anything but a string is
   * refused like a malformed header.
   */
  verifyHeader(header: unknown): Promise<Identity | null>;
  /**
   * Checks an `Authorization` header's token as `verifyHeader` does, except for its session and
   * expiry: the identity of a genuine token (signed by a published key, for this issuer and
   * audience), which its caller must not trust before `sessionRefusal` said yes. For the
   * gateway, which asks Redis about the session together with the caller's budget (one round
   * trip). Null when there is no header; throws UNAUTHENTICATED for a token that is not genuine.
   */
  genuineHeader(header: unknown): Promise<Identity | null>;
}

const INVALID = () => AppError.tokenRefused('invalid');
const EXPIRED = () => AppError.tokenRefused('expired');

/**
 * Why a genuine token is not usable now: its session ended (whether or not it also expired, so
 * the client signs in again rather than refreshing), or it expired; undefined when usable.
 */
export function sessionRefusal(
  identity: Identity,
  revoked: boolean,
  now = Date.now(),
): AppError | undefined {
  if (revoked) return AppError.tokenRefused('ended');
  if (identity.expiresAt <= now) return EXPIRED();
  return undefined;
}

interface VerifiedToken {
  identity: Identity;
  kid: string;
}

/** Verified tokens remembered in process (signature and claims checked once per token). */
const cache = cacheMetrics('access_token');

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const refreshIntervalMs = options.refreshIntervalMs ?? 60_000;
  let keys = new Map<string, KeyObject>();
  // A token string whose signature and claims were checked stays valid until its `exp`, as
  // long as its key is still published: the ECDSA check is the costliest step of a request.
  // Revocation is never cached; it is asked on every use.
  const verified = new BoundedMap<string, VerifiedToken>(options.cacheSize ?? 10_000);
  let fetchedAt = 0;
  let inflight: Promise<void> | undefined;

  function refresh(): Promise<void> {
    inflight ??= options
      .fetchJwks()
      .then((jwks) => {
        keys = new Map(
          jwks
            .filter((jwk) => jwk.alg === ACCESS_TOKEN_ALGORITHM)
            .map((jwk) => [
              jwk.kid,
              createPublicKey({
                key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
                format: 'jwk',
              }),
            ]),
        );
        fetchedAt = Date.now();
        // A key that is no longer published takes its tokens' cached verdicts with it.
        for (const [token, entry] of verified) if (!keys.has(entry.kid)) verified.delete(token);
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  // When fetching the key set last failed, and why: the next attempt waits a second.
  let failedRefresh: { at: number; error: unknown } | undefined;

  async function keyFor(kid: string): Promise<KeyObject | undefined> {
    const now = Date.now();
    const known = keys.has(kid);
    if (now - fetchedAt >= refreshIntervalMs || (!known && now - fetchedAt > 1_000)) {
      if (failedRefresh && now - failedRefresh.at < 1_000) {
        if (!known) throw AppError.unavailable(failedRefresh.error);
      } else {
        try {
          await refresh();
          failedRefresh = undefined;
        } catch (error) {
          // The key set could not be fetched (the auth service is unreachable). A key it held
          // stays trusted meanwhile, as until any refresh; a token of a key never seen cannot
          // be checked, and the outage is its answer.
          failedRefresh = { at: Date.now(), error };
          if (!known) throw error;
        }
      }
    }
    return keys.get(kid);
  }

  /** A genuine token's session may have ended (sign in again) or it may only have expired (refresh). */
  async function checkUsable(identity: Identity): Promise<Identity> {
    const refusal = sessionRefusal(
      identity,
      (await options.isRevoked?.(identity.sessionId)) ?? false,
    );
    if (refusal) throw refusal;
    return identity;
  }

  /** Signature, issuer, audience and claims; neither the session nor the expiry. */
  async function genuine(token: string): Promise<Identity> {
    const cached = verified.get(token);
    if (cached) {
      if (cached.identity.expiresAt <= Date.now()) verified.delete(token);
      if (await keyFor(cached.kid)) {
        cache.hit();
        return cached.identity;
      }
      verified.delete(token);
    }
    cache.miss();
    let decoded: jwt.Jwt | null;
    try {
      // Throws when the header says `typ: JWT` and the payload is not JSON.
      decoded = jwt.decode(token, { complete: true });
    } catch {
      throw INVALID();
    }
    if (
      !decoded ||
      decoded.header.alg !== ACCESS_TOKEN_ALGORITHM ||
      typeof decoded.header.kid !== 'string' ||
      !decoded.header.kid
    )
      throw INVALID();
    const key = await keyFor(decoded.header.kid);
    if (!key) throw INVALID();
    let identity: Identity;
    try {
      // Expiry is checked after the session (checkUsable), so an ended session says so.
      const claims = jwt.verify(token, key, {
        algorithms: [ACCESS_TOKEN_ALGORITHM],
        issuer: options.issuer,
        audience: options.audience,
        ignoreExpiration: true,
      });
      if (
        typeof claims === 'string' ||
        typeof claims.sub !== 'string' ||
        typeof claims['sid'] !== 'string' ||
        typeof claims.exp !== 'number'
      ) {
        throw INVALID();
      }
      identity = { userId: claims.sub, sessionId: claims['sid'], expiresAt: claims.exp * 1000 };
    } catch {
      throw INVALID();
    }
    if (identity.expiresAt > Date.now()) verified.set(token, { identity, kid: decoded.header.kid });
    return identity;
  }

  const verify = async (token: string) => checkUsable(await genuine(token));

  return {
    verify,
    async verifyHeader(header) {
      const token = bearerToken(header);
      return token === null ? null : verify(token);
    },
    async genuineHeader(header) {
      const token = bearerToken(header);
      return token === null ? null : genuine(token);
    },
  };
}

/** The token of a `Bearer` header (the scheme in any case); null when there is no header. */
function bearerToken(header: unknown): string | null {
  if (header === undefined || header === null || header === '') return null;
  if (typeof header !== 'string') throw INVALID();
  const match = /^Bearer ([\w-]+\.[\w-]+\.[\w-]+)$/i.exec(header.trim());
  if (!match?.[1]) throw INVALID();
  return match[1];
}
