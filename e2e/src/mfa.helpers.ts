// Shared by the e2e specs that turn on a second factor the way a frontend does.
import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { graphql, type SignedIn } from './graphql.client';

export const BEGIN_TOTP = 'mutation { beginTotpEnrollment { secret otpauthUri } }';
export const CONFIRM_TOTP =
  'mutation ($code: String!) { confirmTotpEnrollment(code: $code) { codes } }';
export const DISABLE_TOTP = 'mutation { disableTotp }';

/** The auth service's environment for TOTP: its own encryption key for the secrets. */
export const mfaAuthEnv = (): Record<string, string> => ({
  MFA_ENCRYPTION_KEYS: `e2e:${randomBytes(32).toString('base64')}`,
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * An authenticator app: the code of the earliest 30-second step the server still takes and that
 * was not used yet (the server accepts one step either side of its own, each once and in
 * order). The step before the current one is handed out only while 15 s or more of the current
 * one remain, so that the code still counts when the request arrives; so three codes come
 * without waiting for the clock in the first half of a step.
 */
export function createAuthenticator(secret: string) {
  let lastStep = -1;
  return {
    async code(): Promise<string> {
      for (;;) {
        const now = Math.floor(Date.now() / 30_000);
        const left = (now + 1) * 30_000 - Date.now();
        const step = Math.max(left >= 15_000 ? now - 1 : now, lastStep + 1);
        if (step <= now + 1) {
          lastStep = step;
          return generate({ secret, epoch: step * 30 });
        }
        await pause(1_000);
      }
    },
  };
}

/** Turns TOTP on for a signed-in account (recently signed in): its app and recovery codes. */
export async function enrolTotp(gateway: string, who: SignedIn) {
  const begun = await graphql<{ beginTotpEnrollment: { secret: string; otpauthUri: string } }>(
    gateway,
    BEGIN_TOTP,
    { token: who.token },
  );
  if (!begun.data) throw new Error(JSON.stringify(begun.errors));
  const { secret, otpauthUri } = begun.data.beginTotpEnrollment;
  const app = createAuthenticator(secret);
  const confirmed = await graphql<{ confirmTotpEnrollment: { codes: string[] } }>(
    gateway,
    CONFIRM_TOTP,
    { token: who.token, variables: { code: await app.code() } },
  );
  if (!confirmed.data) throw new Error(JSON.stringify(confirmed.errors));
  return { secret, otpauthUri, app, codes: confirmed.data.confirmTotpEnrollment.codes };
}
