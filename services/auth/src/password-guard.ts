import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '@platform/errors';
import type { Logger } from '@platform/logger';
import type { GuessBucket, GuessRepository } from './guess.repository';
import { hashOpaqueToken, isOpaqueToken, newOpaqueToken } from './opaque-token';

/** How many wrong passwords an account may be tried with (see docs/identity.md, "Brute force"). */
export interface GuessPolicy {
  /** Wrong guesses at one account from one client address, or from one known device ... */
  perClient: number;
  /** ... within this many seconds. */
  perClientWindowSeconds: number;
  /** Wrong guesses at one account from unknown devices, whatever their address ... */
  perAccount: number;
  /** ... within this many seconds. */
  perAccountWindowSeconds: number;
  /** A device token is remembered this long after its last sign-in. */
  deviceTokenTtlSeconds: number;
}

/** The devices an account is remembered to have signed in from: the most recent this many. */
export const DEVICES_PER_ACCOUNT = 10;

/** Who is guessing, as far as the guard can tell. */
export interface GuessingClient {
  /** The end user's address as the gateway saw it. */
  address: string | undefined;
  /** The token an earlier sign-in on this device returned, if the client kept it. */
  deviceToken?: string | undefined;
}

/**
 * Limits guesses at a password. Accounts are opaque names the caller picks (`user:<id>`,
 * `email:<address>`), so an unknown email is limited exactly like a real account.
 */
export interface PasswordGuard {
  /**
   * Reserves one guess, atomically, before `verify` runs (RATE_LIMITED with `retryAfter` when
   * a limit is reached: `verify` is then not called). A wrong password stays counted; a right
   * one, or a failure to check, gives the reservation back.
   */
  check(account: string, client: GuessingClient, verify: () => Promise<boolean>): Promise<boolean>;
  /**
   * The device token to hand the client after a successful sign-in: the one it presented, if
   * that is this account's, else a new one. Its holder is limited per device instead of by
   * the account-wide limit.
   */
  deviceTokenFor(account: string, presented: string | undefined): Promise<string>;
  /**
   * Forgets the account's devices: after its password was replaced or its first second factor
   * came on, a device token earned with the old proof (by its owner, or by whoever phished the
   * password) no longer buys a bucket of its own outside the account-wide limit.
   */
  forgetDevices(account: string): Promise<void>;
}

export interface PasswordGuardDeps {
  guesses: GuessRepository;
  policy: GuessPolicy;
  logger: Logger;
  clock?: () => Date;
}

const digest = (...parts: string[]) =>
  createHash('sha256').update(parts.join('\n')).digest('base64url');

export function createPasswordGuard(deps: PasswordGuardDeps): PasswordGuard {
  const { guesses, policy, logger } = deps;
  const clock = deps.clock ?? (() => new Date());

  /** The hash of a presented device token, if it is one this account was given. */
  async function knownDevice(account: string, token: string | undefined) {
    if (!token || !isOpaqueToken(token)) return undefined;
    const tokenHash = hashOpaqueToken(token);
    const since = clock().getTime() - policy.deviceTokenTtlSeconds * 1000;
    return (await guesses.isKnownDevice(digest(account), tokenHash, since)) ? tokenHash : undefined;
  }

  /** A known device has a tight bucket of its own; anyone else shares theirs with their address and the account's loose one. */
  async function bucketsFor(account: string, client: GuessingClient): Promise<GuessBucket[]> {
    const perClient = { limit: policy.perClient, windowMs: policy.perClientWindowSeconds * 1000 };
    const device = await knownDevice(account, client.deviceToken);
    if (device) return [{ id: `device:${device}`, ...perClient }];
    return [
      { id: `client:${digest(account, client.address ?? '')}`, ...perClient },
      {
        id: `account:${digest(account)}`,
        limit: policy.perAccount,
        windowMs: policy.perAccountWindowSeconds * 1000,
      },
    ];
  }

  return {
    async check(account, client, verify) {
      const buckets = await bucketsFor(account, client);
      const reservation = randomUUID();
      const waitMs = await guesses.reserve(buckets, reservation, clock().getTime());
      if (waitMs > 0) throw AppError.rateLimited(Math.ceil(waitMs / 1000));

      const giveBack = () =>
        guesses
          .release(
            buckets.map((bucket) => bucket.id),
            reservation,
          )
          .catch((error: unknown) =>
            // Only costs the owner one counted guess until it ages out.
            logger.warn({ err: error }, 'could not give a password guess back'),
          );
      let right: boolean;
      try {
        right = await verify();
      } catch (error) {
        await giveBack();
        throw error;
      }
      if (right) await giveBack();
      return right;
    },

    async deviceTokenFor(account, presented) {
      const known = await knownDevice(account, presented);
      const device = known && presented ? { token: presented, hash: known } : newOpaqueToken();
      await guesses.rememberDevice(digest(account), device.hash, clock().getTime(), {
        keep: DEVICES_PER_ACCOUNT,
        ttlSeconds: policy.deviceTokenTtlSeconds,
      });
      return device.token;
    },

    forgetDevices(account) {
      return guesses.forgetDevices(digest(account));
    },
  };
}
