import { connect as connectAmqp } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@platform/events';
import { createGrpcClient } from '@platform/grpc';
import { createLogger } from '@platform/logger';
import { createMessageBroker } from '@platform/messaging';
import { notificationV1 } from '@platform/proto';
import {
  eventually,
  startTestSmtpServer,
  type AppCluster,
  type TestRun,
  type TestSmtpServer,
} from '@platform/testing';
import { startPlatform, stopPlatform, type Platform } from './platform.harness';
import { codeOf, graphql, signUp, type SignedIn } from './graphql.client';

const PASSWORD = 'correct horse battery';
const SEND = `mutation ($input: SendNotificationInput!) { sendNotification(input: $input) {
  id type title body data read readAt createdAt recipient { id email } } }`;
const INBOX = `query ($first: Int, $after: String, $unreadOnly: Boolean) { me {
  unreadNotificationCount
  notifications(first: $first, after: $after, unreadOnly: $unreadOnly) {
    totalCount edges { cursor node { id type title read } } pageInfo { hasNextPage endCursor } } } }`;
const PREFERENCES = `mutation ($input: [NotificationPreferenceInput!]!) {
  updateNotificationPreferences(input: $input) { type inApp email } }`;

interface InboxNode {
  id: string;
  type: string;
  title: string;
  read: boolean;
}
interface Inbox {
  me: {
    unreadNotificationCount: number;
    notifications: { totalCount: number; edges: { cursor: string; node: InboxNode }[] };
  };
}

describe('notifications: inbox, preferences and the email channel', () => {
  let platform: Platform | undefined;
  let run: TestRun;
  let apps: AppCluster;
  let smtp: TestSmtpServer;
  let gateway: string;
  let admin: SignedIn;

  beforeAll(async () => {
    // The first mail is refused once (451): its delivery must be retried.
    smtp = await startTestSmtpServer({ refuseFirst: 1 });
    platform = await startPlatform({
      'notification-service': {
        SMTP_URL: smtp.url,
        NOTIFICATION_EMAIL_RETRY_DELAYS_MS: '200,400',
      },
    });
    ({ run, apps, gateway, admin } = platform);
  });

  afterAll(async () => {
    await stopPlatform(platform);
    await smtp?.close();
  });

  async function as<T>(who: SignedIn, query: string, variables?: Record<string, unknown>) {
    return graphql<T>(gateway, query, { token: who.token, variables });
  }

  async function inbox(who: SignedIn, variables: Record<string, unknown> = {}): Promise<Inbox> {
    const response = await as<Inbox>(who, INBOX, { first: 50, ...variables });
    if (!response.data) throw new Error(JSON.stringify(response.errors));
    return response.data;
  }

  /** Signs up and waits for the welcome notification, so counts start from a known state. */
  async function newUser(email: string): Promise<SignedIn> {
    const user = await signUp(gateway, email, PASSWORD);
    await eventually(async () => {
      const { me } = await inbox(user);
      if (me.notifications.totalCount !== 1) throw new Error('no welcome yet');
    }, 10_000);
    return user;
  }

  it('delivers a sent notification to its recipient only, with fields from the users subgraph', async () => {
    const alice = await newUser('alice@example.com');
    const bob = await newUser('bob@example.com');
    const sent = await as<{ sendNotification: Record<string, unknown> & { id: string } }>(
      admin,
      SEND,
      {
        input: {
          userId: alice.id,
          type: 'invoice.paid',
          title: '  Invoice paid  ',
          body: 'Thanks!',
          data: { invoice: 42, lines: [1, 2] },
        },
      },
    );
    expect(sent.data?.sendNotification).toMatchObject({
      type: 'invoice.paid',
      title: 'Invoice paid',
      data: { invoice: 42, lines: [1, 2] },
      read: false,
      readAt: null,
      recipient: { id: alice.id, email: 'alice@example.com' },
    });
    const id = sent.data!.sendNotification.id;

    const mine = await inbox(alice);
    expect(mine.me.unreadNotificationCount).toBe(2);
    expect(mine.me.notifications.edges[0]?.node).toMatchObject({ id, title: 'Invoice paid' });
    expect((await inbox(bob)).me.notifications.totalCount).toBe(1);

    const own = await as(alice, 'query ($id: ID!) { notification(id: $id) { id } }', { id });
    expect(own.data).toEqual({ notification: { id } });
    const theirs = await as(bob, 'query ($id: ID!) { notification(id: $id) { id } }', { id });
    expect(codeOf(theirs)).toBe('NOT_FOUND');
    for (const mutation of [
      'mutation ($id: ID!) { markNotificationRead(id: $id) { id } }',
      'mutation ($id: ID!) { deleteNotification(id: $id) }',
    ])
      expect(codeOf(await as(bob, mutation, { id }))).toBe('NOT_FOUND');
    expect((await inbox(alice)).me.unreadNotificationCount).toBe(2);

    // Sending needs notifications:send.
    const refused = await as(bob, SEND, {
      input: { userId: alice.id, type: 'spam', title: 'Hi', body: '' },
    });
    expect(codeOf(refused)).toBe('FORBIDDEN');
  });

  it("shows a recipient's profile only to the recipient and to holders of users:read, never to a sender without it", async () => {
    const sender = await newUser('sender-only@example.com');
    const dana = await newUser('dana@example.com');
    const role = await as<{ createRole: { id: string } }>(
      admin,
      'mutation ($input: CreateRoleInput!) { createRole(input: $input) { id } }',
      { input: { name: 'sender-only', permissions: ['notifications:send'] } },
    );
    const assigned = await as(
      admin,
      'mutation ($u: ID!, $r: ID!) { assignRole(userId: $u, roleId: $r) }',
      {
        u: sender.id,
        r: role.data?.createRole.id,
      },
    );
    expect(assigned.errors).toBeUndefined();
    const input = { userId: dana.id, type: 'note', title: 'Hi', body: 'b' };

    // The recipient's id is the sender's own input: answered.
    const byId = await as<{ sendNotification: { id: string; recipient: { id: string } } }>(
      sender,
      'mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id recipient { id } } }',
      { input },
    );
    expect(byId.data?.sendNotification.recipient).toEqual({ id: dana.id });
    // Their profile is not, as `user(id:)` refuses it: FORBIDDEN, and no email in the answer.
    const profile = await as(sender, SEND, { input });
    expect(codeOf(profile)).toBe('FORBIDDEN');
    expect(JSON.stringify(profile)).not.toContain('dana@example.com');
    expect(
      codeOf(await as(sender, 'query ($id: ID!) { user(id: $id) { email } }', { id: dana.id })),
    ).toBe('FORBIDDEN');

    // The recipient reads their own; an admin (users:read) reads anyone's.
    const id = byId.data?.sendNotification.id;
    const RECIPIENT = 'query ($id: ID!) { notification(id: $id) { recipient { email } } }';
    expect((await as(dana, RECIPIENT, { id })).data).toEqual({
      notification: { recipient: { email: 'dana@example.com' } },
    });
    const byAdmin = await as<{ sendNotification: { recipient: { email: string } } }>(admin, SEND, {
      input,
    });
    expect(byAdmin.data?.sendNotification.recipient.email).toBe('dana@example.com');
  });

  it('sends data written as a literal with variables in it', async () => {
    const literal = await newUser('literal@example.com');
    const sent = await as<{ sendNotification: { data: unknown } }>(
      admin,
      `mutation ($to: ID!, $invoice: Int, $tag: String, $absent: String) {
        sendNotification(input: { userId: $to, type: "invoice.paid", title: "Paid", body: "b",
          data: { invoice: $invoice, tags: [$tag, "x"], absent: $absent } }) { data } }`,
      { to: literal.id, invoice: 7, tag: 'urgent' },
    );
    expect(sent.errors).toBeUndefined();
    expect(sent.data?.sendNotification.data).toEqual({ invoice: 7, tags: ['urgent', 'x'] });
  });

  it('refuses bad input with BAD_USER_INPUT naming the field, and an unknown recipient with NOT_FOUND', async () => {
    const carol = await newUser('carol@example.com');
    const base = { userId: carol.id, type: 'note', title: 'Hi', body: 'Hello' };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ type: 'Not A Slug' }, 'BAD_USER_INPUT', /^type/],
      [{ type: 'x'.repeat(51) }, 'BAD_USER_INPUT', /^type/],
      [{ title: '   ' }, 'BAD_USER_INPUT', /^title/],
      [{ title: 't'.repeat(201) }, 'BAD_USER_INPUT', /^title/],
      [{ body: 'b'.repeat(5_001) }, 'BAD_USER_INPUT', /^body/],
      [{ data: { blob: 'd'.repeat(16 * 1024) } }, 'BAD_USER_INPUT', /^data/],
      [{ userId: 'nobody' }, 'BAD_USER_INPUT', /^userId/],
      // The recipient's id in another spelling is not an id of the platform's.
      [{ userId: carol.id.toUpperCase() }, 'BAD_USER_INPUT', /^userId/],
      [{ userId: '00000000-0000-4000-8000-000000000000' }, 'NOT_FOUND', /User/],
    ];
    for (const [change, code, message] of cases) {
      const response = await as(admin, SEND, { input: { ...base, ...change } });
      expect({ change: Object.keys(change), code: codeOf(response) }).toEqual({
        change: Object.keys(change),
        code,
      });
      expect(response.errors?.[0]?.message).toMatch(message);
    }
    expect((await inbox(carol)).me.notifications.totalCount).toBe(1);
  });

  it('marks read, marks all read, deletes, and keeps the counts right', async () => {
    const dave = await newUser('dave@example.com');
    const ids: string[] = [];
    for (const title of ['one', 'two', 'three']) {
      const sent = await as<{ sendNotification: { id: string } }>(admin, SEND, {
        input: { userId: dave.id, type: 'note', title, body: '' },
      });
      ids.push(sent.data!.sendNotification.id);
    }
    expect((await inbox(dave)).me.unreadNotificationCount).toBe(4);

    const read = await as<{ markNotificationRead: { read: boolean; readAt: string } }>(
      dave,
      'mutation ($id: ID!) { markNotificationRead(id: $id) { read readAt } }',
      { id: ids[0] },
    );
    expect(read.data?.markNotificationRead.read).toBe(true);
    const again = await as<{ markNotificationRead: { readAt: string } }>(
      dave,
      'mutation ($id: ID!) { markNotificationRead(id: $id) { readAt } }',
      { id: ids[0] },
    );
    expect(again.data?.markNotificationRead.readAt).toBe(read.data?.markNotificationRead.readAt);
    const unread = await inbox(dave, { unreadOnly: true });
    expect(unread.me.unreadNotificationCount).toBe(3);
    expect(unread.me.notifications.edges.map((edge) => edge.node.id)).not.toContain(ids[0]);

    const deleted = await as(dave, 'mutation ($id: ID!) { deleteNotification(id: $id) }', {
      id: ids[1],
    });
    expect(deleted.data).toEqual({ deleteNotification: true });
    expect(
      codeOf(await as(dave, 'mutation ($id: ID!) { deleteNotification(id: $id) }', { id: ids[1] })),
    ).toBe('NOT_FOUND');
    expect((await inbox(dave)).me).toMatchObject({
      unreadNotificationCount: 2,
      notifications: { totalCount: 3 },
    });

    const all = await as(dave, 'mutation { markAllNotificationsRead }');
    expect(all.data).toEqual({ markAllNotificationsRead: 2 });
    expect((await as(dave, 'mutation { markAllNotificationsRead }')).data).toEqual({
      markAllNotificationsRead: 0,
    });
    expect((await inbox(dave)).me.unreadNotificationCount).toBe(0);

    // Pages of one walk the inbox newest first.
    const first = await inbox(dave, { first: 1 });
    const second = await inbox(dave, {
      first: 1,
      after: first.me.notifications.edges[0]?.cursor,
    });
    expect(first.me.notifications.edges[0]?.node.title).toBe('three');
    expect(second.me.notifications.edges[0]?.node.title).toBe('one');
  });

  it('tells a user about role changes', async () => {
    const erin = await newUser('erin@example.com');
    const roles = await as<{ roles: { id: string; name: string }[] }>(
      admin,
      '{ roles { id name } }',
    );
    const created = await as<{ createRole: { id: string } }>(
      admin,
      'mutation { createRole(input: { name: "editor", permissions: ["users:read"] }) { id } }',
    );
    const roleId = created.data!.createRole.id;
    expect(roles.data?.roles.length).toBeGreaterThan(0);
    await as(
      admin,
      'mutation ($u: ID!, $r: ID!) { assignRole(userId: $u, roleId: $r, scope: "tenant:acme") }',
      {
        u: erin.id,
        r: roleId,
      },
    );
    await eventually(async () => {
      const titles = (await inbox(erin)).me.notifications.edges.map((edge) => edge.node);
      expect(titles[0]).toMatchObject({
        type: 'role_changed',
        title: 'You were given the role "editor" in tenant:acme',
      });
    }, 10_000);
  });

  it('refuses to send to a user once they are deleted, and keeps nothing of theirs', async () => {
    const grace = await newUser('grace@example.com');
    const note = { userId: grace.id, type: 'note', title: 'Before', body: '' };
    expect(codeOf(await as(admin, SEND, { input: note }))).toBeUndefined();
    const deleted = await as(
      grace,
      'mutation ($id: ID!, $pw: String) { deleteUser(id: $id, currentPassword: $pw) }',
      { id: grace.id, pw: PASSWORD },
    );
    expect(deleted.data).toEqual({ deleteUser: true });

    // The notification service remembered that grace existed; her deletion reaches it as an
    // event, after which every send is refused and her notifications are gone.
    await eventually(async () => {
      const response = await as(admin, SEND, { input: { ...note, title: 'After' } });
      expect(codeOf(response)).toBe('NOT_FOUND');
    }, 10_000);
    const notifications = createGrpcClient(notificationV1.NotificationServiceService, {
      address: apps.grpcAddress('notification-service'),
      internalToken: run.internalToken,
    });
    try {
      // Sends are refused from the moment the deletion's tombstone commits; her notifications
      // go in the transaction that follows it, a moment later.
      await eventually(async () => {
        const left = await notifications.listNotifications({
          recipientId: grace.id,
          first: 50,
          after: '',
          unreadOnly: false,
          withUnreadCount: false,
        });
        expect(left.totalCount).toBe(0);
      }, 10_000);
    } finally {
      notifications.close();
    }
  });

  it('creates one notification for an event delivered twice', async () => {
    const frank = await newUser('frank@example.com');
    const broker = await createMessageBroker({
      url: run.rabbitmqUrl,
      exchange: run.exchange,
      logger: createLogger({ name: 'inbox-test', level: 'silent' }),
    });
    try {
      const event = createEvent('rbac.role_assigned', {
        userId: frank.id,
        roleId: '00000000-0000-4000-8000-0000000000aa',
        roleName: 'twice',
        scope: null,
        actorId: admin.id,
      });
      await broker.publish(event);
      await broker.publish(event);
      await eventually(async () => {
        const titles = (await inbox(frank)).me.notifications.edges.map((e) => e.node.title);
        expect(titles).toContain('You were given the role "twice"');
      }, 10_000);
      // Give the duplicate time to be handled too, then count.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const titles = (await inbox(frank)).me.notifications.edges.map((e) => e.node.title);
      expect(titles.filter((title) => title.includes('"twice"'))).toHaveLength(1);
    } finally {
      await broker.close();
    }
  });

  it('has per-type preferences: security stays on in-app, and email off stops the mail', async () => {
    const grace = await newUser('grace@example.com');
    const defaults = await as<{ me: { notificationPreferences: unknown[] } }>(
      grace,
      '{ me { notificationPreferences { type inApp email } } }',
    );
    expect(defaults.data?.me.notificationPreferences).toEqual(
      expect.arrayContaining([
        { type: 'security', inApp: true, email: true },
        { type: 'welcome', inApp: true, email: false },
      ]),
    );
    const locked = await as(grace, PREFERENCES, { input: [{ type: 'security', inApp: false }] });
    expect(codeOf(locked)).toBe('BAD_USER_INPUT');
    expect(locked.errors?.[0]?.message).toMatch(/^inApp/);

    // Email on (the default): a password change mails a security notice (after one retry:
    // the test SMTP server refuses the first mail).
    const changed = await as(
      grace,
      'mutation ($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }',
      { c: PASSWORD, n: 'another horse battery' },
    );
    expect(changed.errors).toBeUndefined();
    const notice = await eventually(async () => {
      const node = (await inbox(grace)).me.notifications.edges[0]?.node;
      if (node?.type !== 'security') throw new Error('no security notice yet');
      return node;
    }, 10_000);
    // Two attempts, the retry 200 ms after the first: 20 s leaves room for a loaded machine,
    // where 10 s once ran out with the retry still waiting (two CI runs side by side).
    const delivered = await eventually(async () => {
      const response = await as<{
        notification: { emailDelivery: { status: string; attempts: number } | null };
      }>(
        grace,
        'query ($id: ID!) { notification(id: $id) { emailDelivery { status attempts lastError } } }',
        {
          id: notice.id,
        },
      );
      const delivery = response.data?.notification.emailDelivery;
      if (delivery?.status !== 'SENT') throw new Error(JSON.stringify(response));
      return delivery;
    }, 20_000);
    expect(delivered).toMatchObject({ status: 'SENT', attempts: 2, lastError: null });
    expect(smtp.received.filter((mail) => mail.to === 'grace@example.com')).toHaveLength(1);

    // Email off: the next notice is in the inbox, and no mail goes out.
    const off = await as<{ updateNotificationPreferences: unknown[] }>(grace, PREFERENCES, {
      input: [{ type: 'security', email: false }],
    });
    expect(off.data?.updateNotificationPreferences).toContainEqual({
      type: 'security',
      inApp: true,
      email: false,
    });
    await as(
      grace,
      'mutation ($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }',
      { c: 'another horse battery', n: 'a third horse battery' },
    );
    const second = await eventually(async () => {
      const nodes = (await inbox(grace)).me.notifications.edges.map((edge) => edge.node);
      const security = nodes.filter((node) => node.type === 'security');
      if (security.length < 2) throw new Error('no second notice yet');
      return security[0]!;
    }, 10_000);
    const noMail = await as<{ notification: { emailDelivery: unknown } }>(
      grace,
      'query ($id: ID!) { notification(id: $id) { emailDelivery { status } } }',
      { id: second.id },
    );
    // No delivery was recorded with the notice (same transaction), so no mail is on its way.
    expect(noMail.data?.notification.emailDelivery).toBeNull();
    expect(smtp.received.filter((mail) => mail.to === 'grace@example.com')).toHaveLength(1);

    // In-app off for another type: kept out of the inbox.
    await as(grace, PREFERENCES, { input: [{ type: 'digest', inApp: false }] });
    await as(admin, SEND, {
      input: { userId: grace.id, type: 'digest', title: 'Weekly', body: '' },
    });
    const titles = (await inbox(grace)).me.notifications.edges.map((edge) => edge.node.title);
    expect(titles).not.toContain('Weekly');
  });

  it('records a mail that never goes through as FAILED, with the reason, and dead-letters it', async () => {
    const refusing = await startTestSmtpServer({ refuseFirst: 1_000 });
    try {
      await apps.stop('notification-service');
      await apps.start('notification-service', {
        SMTP_URL: refusing.url,
        NOTIFICATION_EMAIL_RETRY_DELAYS_MS: '100,200',
      });
      const henry = await newUser('henry@example.com');
      // The subgraph's channel to the restarted service may still be reconnecting (its calls
      // answer SERVICE_UNAVAILABLE for up to ~2 s): retried as a client honouring Retry-After.
      await eventually(async () => {
        const saved = await as(henry, PREFERENCES, { input: [{ type: 'alert', email: true }] });
        expect(saved.errors).toBeUndefined();
      });
      const sent = await as<{ sendNotification: { id: string } }>(admin, SEND, {
        input: { userId: henry.id, type: 'alert', title: 'Heads up', body: 'Test' },
      });
      const id = sent.data!.sendNotification.id;
      const failed = await eventually(async () => {
        const response = await as<{
          notification: { emailDelivery: { status: string; attempts: number; lastError: string } };
        }>(
          henry,
          'query ($id: ID!) { notification(id: $id) { emailDelivery { status attempts lastError } } }',
          {
            id,
          },
        );
        const delivery = response.data?.notification.emailDelivery;
        if (delivery?.status !== 'FAILED') throw new Error(JSON.stringify(response));
        return delivery;
      }, 15_000);
      expect(failed).toMatchObject({ status: 'FAILED', attempts: 3 });
      expect(failed.lastError).toMatch(/^SMTP 451/);

      const connection = await connectAmqp(run.rabbitmqUrl);
      try {
        const channel = await connection.createChannel();
        const dlq = await channel.checkQueue(`${run.exchange}.notification.email.dlq`);
        expect(dlq.messageCount).toBe(1);
      } finally {
        await connection.close();
      }
    } finally {
      await refusing.close();
    }
  });

  it('lets nobody but the platform send a security notice, or any of its own notice types', async () => {
    const ivy = await newUser('ivy@example.com');
    for (const type of ['security', 'welcome', 'role_changed']) {
      const response = await as(admin, SEND, {
        input: { userId: ivy.id, type, title: 'Your account is locked', body: 'Click here' },
      });
      expect(response.errors?.[0]?.extensions).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'type',
      });
    }
    const titles = (await inbox(ivy)).me.notifications.edges.map((edge) => edge.node.title);
    expect(titles).not.toContain('Your account is locked');
  });

  it('notifies once for a send retried with its idempotency key, at once or later', async () => {
    const shopper = await newUser('shopper@example.com');
    const before = (await inbox(shopper)).me.notifications.totalCount;
    // Mailed too: the shopper asked for shipping news by email.
    await as(shopper, PREFERENCES, { input: [{ type: 'shipping', email: true }] });
    const input = {
      userId: shopper.id,
      type: 'shipping',
      title: 'Your order shipped',
      body: '',
      idempotencyKey: 'order-1234:shipped',
    };
    const answers = await Promise.all([1, 2, 3].map(() => as(admin, SEND, { input })));
    const ids = answers.map((answer) => {
      expect(answer.errors).toBeUndefined();
      return (answer.data as { sendNotification: { id: string } }).sendNotification.id;
    });
    expect(new Set(ids).size).toBe(1);
    // Retried after the recipient read it: the same notification, as it was sent (the sender
    // learns nothing of the recipient's reading, nor of the mail's delivery).
    await as(shopper, 'mutation ($id: ID!) { markNotificationRead(id: $id) { id } }', {
      id: ids[0],
    });
    const later = await as<{
      sendNotification: { id: string; read: boolean; readAt: unknown; emailDelivery: unknown };
    }>(admin, SEND.replace('recipient {', 'emailDelivery { status } recipient {'), { input });
    expect(later.data?.sendNotification).toMatchObject({
      id: ids[0],
      read: false,
      readAt: null,
      emailDelivery: null,
    });
    const own = await as<{ notification: { read: boolean; emailDelivery: unknown } }>(
      shopper,
      'query ($id: ID!) { notification(id: $id) { read emailDelivery { status } } }',
      { id: ids[0] },
    );
    expect(own.data?.notification).toMatchObject({
      read: true,
      emailDelivery: { status: expect.any(String) as unknown },
    });
    expect((await inbox(shopper)).me.notifications.totalCount).toBe(before + 1);
    // The key names that notification: another with it is refused, naming the field.
    const other = await as(admin, SEND, { input: { ...input, title: 'Your order was lost' } });
    expect(other.errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'idempotencyKey',
    });
  });
});
