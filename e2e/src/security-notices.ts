import { expect } from 'vitest';
import { eventually, type TestSmtpServer } from '@platform/testing';
import { graphql } from './graphql.client';

const INBOX = '{ me { notifications(first: 20) { edges { node { type title body } } } } }';

/** The user's in-app security notice with this title, and the email that carried it. */
export async function expectSecurityNotice(
  gateway: string,
  smtp: TestSmtpServer,
  who: { token: string },
  email: string,
  title: string,
): Promise<void> {
  await eventually(async () => {
    const inbox = await graphql<{
      me: { notifications: { edges: { node: { type: string; title: string } }[] } };
    }>(gateway, INBOX, { token: who.token });
    expect(inbox.data?.me.notifications.edges.map((edge) => edge.node)).toContainEqual(
      expect.objectContaining({ type: 'security.mfa', title }),
    );
  }, 15_000);
  await eventually(() => {
    const mail = smtp.received.find(
      (m) => m.to === email && m.raw.replace(/=\r?\n/g, '').includes(title),
    );
    if (!mail) throw new Error(`no mail "${title}" to ${email} yet`);
  }, 15_000);
}
