import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrpcClient } from '@platform/grpc';
import { authV1 } from '@platform/proto';
import {
  eventually,
  startTestSmtpServer,
  type ReceivedMail,
  type TestSmtpServer,
} from '@platform/testing';
import { graphql } from './graphql.client';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';

/** The token in a mail: the line of 43 base64url characters (soft line breaks undone). */
function tokenIn(mail: ReceivedMail): string {
  const body = mail.raw.replace(/=\r?\n/g, '');
  const match = /^([\w-]{43})\s*$/m.exec(body);
  if (!match?.[1]) throw new Error(`no token in mail:\n${mail.raw}`);
  return match[1];
}

const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`;
const LOGIN = `mutation ($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }`;
const RESET = `mutation ($t: String!) { resetPassword(token: $t, newPassword: "a fresh passphrase") }`;
const SET_STATUS = `mutation ($id: ID!, $status: UserStatus!) { setUserStatus(id: $id, status: $status) { id } }`;
const codeOf = (response: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  response.errors?.[0]?.extensions?.['code'];

describe('email verification and password reset, with mail through a real SMTP server', () => {
  let platform: Platform;
  let gateway: string;
  let smtp: TestSmtpServer;

  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    platform = await startPlatform({ 'auth-service': { SMTP_URL: smtp.url } });
    gateway = platform.gateway;
  });

  afterAll(async () => {
    await stopPlatform(platform);
    await smtp?.close();
  });

  async function register(email: string) {
    const response = await graphql<{ register: { accessToken: string; user: { id: string } } }>(
      gateway,
      REGISTER,
      {
        variables: { input: { email, password: 'correct horse battery', displayName: 'Mia' } },
      },
    );
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data.register;
  }
  const mailTo = (address: string) =>
    eventually(() => {
      const mail = smtp.received.find((m) => m.to === address);
      if (!mail) throw new Error(`no mail to ${address} yet`);
      return mail;
    });

  /** The admin sets the account's status; the answer's errors, if any. */
  const setStatus = async (id: string, status: 'ACTIVE' | 'DISABLED') =>
    (
      await graphql(gateway, SET_STATUS, {
        token: platform.admin.token,
        variables: { id, status },
      })
    ).errors;
  const verifyEmail = (token: string) =>
    graphql<{ verifyEmail: { id: string } }>(
      gateway,
      'mutation ($token: String!) { verifyEmail(token: $token) { id } }',
      { variables: { token } },
    );
  /** How many status events the auth service's lock-out consumer has handled (its /metrics). */
  const statusLockOutsHandled = async () => {
    const metrics = await (await fetch(platform.apps.metricsUrl('auth-service'))).text();
    const handled = metrics
      .split('\n')
      .find(
        (line) =>
          line.startsWith('messages_handled_total{') &&
          line.includes('auth.disabled-lockout"') &&
          line.includes('outcome="ack"'),
      );
    return handled ? Number(handled.slice(handled.lastIndexOf(' ') + 1)) : 0;
  };
  /** Whether the account's address is verified, as the admin sees it. */
  const emailVerified = async (id: string) =>
    (
      await graphql<{ user: { emailVerified: boolean } }>(
        gateway,
        'query ($id: ID!) { user(id: $id) { emailVerified } }',
        { token: platform.admin.token, variables: { id } },
      )
    ).data?.user.emailVerified;

  it('verifies an email address with the mailed token, once', async () => {
    const account = await register('verify@example.com');
    const asked = await graphql(gateway, 'mutation { requestEmailVerification }', {
      token: account.accessToken,
    });
    expect(asked.data).toEqual({ requestEmailVerification: true });
    const token = tokenIn(await mailTo('verify@example.com'));

    const verified = await graphql<{ verifyEmail: { emailVerified: boolean } }>(
      gateway,
      'mutation ($token: String!) { verifyEmail(token: $token) { emailVerified } }',
      { variables: { token } },
    );
    expect(verified.data?.verifyEmail.emailVerified).toBe(true);
    const me = await graphql<{ me: { emailVerified: boolean } }>(
      gateway,
      '{ me { emailVerified } }',
      {
        token: account.accessToken,
      },
    );
    expect(me.data?.me.emailVerified).toBe(true);

    const again = await graphql(
      gateway,
      'mutation ($token: String!) { verifyEmail(token: $token) { id } }',
      {
        variables: { token },
      },
    );
    expect(again.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
  });

  it('verifies nothing with a link mailed before the account was disabled, even once it is enabled again', async () => {
    const account = await register('verify-disabled@example.com');
    await graphql(gateway, 'mutation { requestEmailVerification }', {
      token: account.accessToken,
    });
    const token = tokenIn(await mailTo('verify-disabled@example.com'));

    expect(await setStatus(account.user.id, 'DISABLED')).toBeUndefined();
    expect((await verifyEmail(token)).errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    expect(await setStatus(account.user.id, 'ACTIVE')).toBeUndefined();
    expect((await verifyEmail(token)).errors?.[0]?.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'token',
    });
    expect(await emailVerified(account.user.id)).toBe(false);
  });

  it('verifies nothing with a link mailed while the account is disabled', async () => {
    // A request the disable overtook: its link is mailed after the disable's lock-outs, so they
    // did not use it up. Asked of the auth service directly, as that request's call would be.
    const account = await register('verify-while-disabled@example.com');
    const handledBefore = await statusLockOutsHandled();
    expect(await setStatus(account.user.id, 'DISABLED')).toBeUndefined();
    // The disable's event locks the account out once more, using up what was begun up to 10 s
    // after it: the link is asked for once that has run, so that only the subgraph's check
    // stands between it and the disabled account.
    await eventually(async () => {
      if ((await statusLockOutsHandled()) <= handledBefore)
        throw new Error('the status event is not handled yet');
    });
    const auth = createGrpcClient(authV1.AuthServiceService, {
      address: platform.apps.grpcAddress('auth-service'),
      internalToken: platform.run.internalToken,
    });
    try {
      await auth.requestEmailVerification({
        userId: account.user.id,
        email: 'verify-while-disabled@example.com',
      });
    } finally {
      auth.close();
    }
    const token = tokenIn(await mailTo('verify-while-disabled@example.com'));
    const refused = await verifyEmail(token);
    expect(refused.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
    expect(refused.data?.verifyEmail ?? null).toBeNull();
    expect(await emailVerified(account.user.id)).toBe(false);
    // The link was not used up by the refusal: enabled again, the account's own link works.
    expect(await setStatus(account.user.id, 'ACTIVE')).toBeUndefined();
    expect((await verifyEmail(token)).data?.verifyEmail.id).toBe(account.user.id);
    expect(await emailVerified(account.user.id)).toBe(true);
  });

  it('resets a password with the mailed token and ends every session; says nothing about unknown emails', async () => {
    const account = await register('reset@example.com');
    const unknown = await graphql(
      gateway,
      'mutation { requestPasswordReset(email: "nobody@example.com") }',
    );
    expect(unknown.data).toEqual({ requestPasswordReset: true });
    const known = await graphql(
      gateway,
      'mutation { requestPasswordReset(email: "Reset@Example.com") }',
    );
    expect(known.data).toEqual({ requestPasswordReset: true });
    const token = tokenIn(await mailTo('reset@example.com'));
    expect(smtp.received.some((mail) => mail.to === 'nobody@example.com')).toBe(false);

    const weak = await graphql(
      gateway,
      'mutation ($t: String!) { resetPassword(token: $t, newPassword: "short") }',
      {
        variables: { t: token },
      },
    );
    expect(weak.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'newPassword' });

    const reset = await graphql(
      gateway,
      'mutation ($t: String!) { resetPassword(token: $t, newPassword: "a fresh passphrase") }',
      {
        variables: { t: token },
      },
    );
    expect(reset.data).toEqual({ resetPassword: true });
    expect(codeOf(await graphql(gateway, '{ me { id } }', { token: account.accessToken }))).toBe(
      'UNAUTHENTICATED',
    );
    const withNew = await graphql(gateway, LOGIN, {
      variables: { email: 'reset@example.com', password: 'a fresh passphrase' },
    });
    expect(withNew.data).toBeTruthy();

    const reused = await graphql(
      gateway,
      'mutation ($t: String!) { resetPassword(token: $t, newPassword: "yet another phrase") }',
      {
        variables: { t: token },
      },
    );
    expect(reused.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
  });

  it('sends one account at most its hourly quota of verification mails', async () => {
    const { accessToken } = await register('quota@example.com');
    const ask = () =>
      graphql(gateway, 'mutation { requestEmailVerification }', { token: accessToken });
    for (let n = 0; n < 5; n++) expect((await ask()).errors).toBeUndefined();
    const refused = await ask();
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(refused.errors?.[0]?.extensions?.['retryAfter']).toBeGreaterThan(0);
    await eventually(() =>
      expect(smtp.received.filter((mail) => mail.to === 'quota@example.com')).toHaveLength(5),
    );
  });

  it('refuses an expired reset token', async () => {
    await register('late@example.com');
    await graphql(gateway, 'mutation { requestPasswordReset(email: "late@example.com") }');
    const token = tokenIn(await mailTo('late@example.com'));
    // Let the 30 minutes pass.
    const db = new pg.Client({ connectionString: platform.run.databaseUrl });
    await db.connect();
    try {
      await db.query(
        `UPDATE "auth"."one_time_tokens" SET expires_at = now() - interval '1 second'`,
      );
    } finally {
      await db.end();
    }
    const late = await graphql(
      gateway,
      'mutation ($t: String!) { resetPassword(token: $t, newPassword: "a fresh passphrase") }',
      {
        variables: { t: token },
      },
    );
    expect(late.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
  });

  it('mails a disabled account no reset, and a token mailed before it was disabled sets no password, even once enabled again', async () => {
    const account = await register('disabled@example.com');
    const ask = () =>
      graphql(gateway, 'mutation { requestPasswordReset(email: "disabled@example.com") }');
    await ask();
    const token = tokenIn(await mailTo('disabled@example.com'));
    expect(await setStatus(account.user.id, 'DISABLED')).toBeUndefined();

    // Refused as any unusable token, telling nothing more; the password is unchanged.
    const refused = await graphql(gateway, RESET, { variables: { t: token } });
    expect(refused.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
    // Asked while disabled: the same answer as for any address, and no new token (so no mail)
    // once the auth service has handled every reset request.
    expect((await ask()).data).toEqual({ requestPasswordReset: true });
    const db = new pg.Client({ connectionString: platform.run.databaseUrl });
    await db.connect();
    try {
      await eventually(async () => {
        const { rows } = await db.query<{ pending: number }>(
          `SELECT count(*)::int AS pending FROM "auth"."outbox_events" e
            WHERE e.type = 'auth.password_reset_requested' AND NOT EXISTS (
              SELECT 1 FROM "auth"."processed_events" p
                WHERE p.consumer = 'auth.password-reset-mail' AND p.event_id = e.id)`,
        );
        expect(rows[0]?.pending).toBe(0);
      });
      const { rows } = await db.query<{ tokens: number }>(
        `SELECT count(*)::int AS tokens FROM "auth"."one_time_tokens"
          WHERE user_id = $1 AND purpose = 'RESET_PASSWORD'`,
        [account.user.id],
      );
      expect(rows[0]?.tokens).toBe(1);
    } finally {
      await db.end();
    }

    // Enabled again: the token mailed before the disable stays used up (a new reset is needed),
    // and the old password still signs in.
    expect(await setStatus(account.user.id, 'ACTIVE')).toBeUndefined();
    const stale = await graphql(gateway, RESET, { variables: { t: token } });
    expect(stale.errors?.[0]?.extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'token' });
    const signIn = await graphql(gateway, LOGIN, {
      variables: { email: 'disabled@example.com', password: 'correct horse battery' },
    });
    expect(signIn.errors).toBeUndefined();
  });
});
