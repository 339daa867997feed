import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Outcome, Recorder, RequestRecord } from './recorder';

/** The operation kinds of one round of the load, in order. */
export const KINDS = ['register', 'login', 'me', 'logout', 'assign', 'unassign', 'send'] as const;
export type Kind = (typeof KINDS)[number];

export const PASSWORD = 'chaos horse battery';
export const PERMISSION = 'users:read';

const REGISTER = `mutation ($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }`;
const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { id } } }`;
const ME = '{ me { id } }';
const LOGOUT = 'mutation { logout }';
const ASSIGN = 'mutation ($u: ID!, $r: ID!) { assignRole(userId: $u, roleId: $r) }';
const UNASSIGN = 'mutation ($u: ID!, $r: ID!) { unassignRole(userId: $u, roleId: $r) }';
/** What the role grants, exercised: a list only `users:read` may see. */
export const USE_PERMISSION = '{ users(first: 1) { totalCount } }';
export const HAS_PERMISSION = `{ hasPermission(permission: "${PERMISSION}") }`;
const SEND = `mutation ($input: SendNotificationInput!) { sendNotification(input: $input) { id } }`;
const ADDED = 'subscription { notificationAdded { id type title } }';

export interface Account {
  email: string;
  password: string;
  id: string;
  /** The access token of the session it was registered (or seeded) with; never logged out. */
  token: string;
}

export interface Acked<T> {
  /** When the success answer arrived (epoch ms). */
  at: number;
  item: T;
}

export interface Round {
  lane: number;
  start: number;
  end: number;
  /** The kinds that did not succeed (with their immediate effect) in this round. */
  failed: Kind[];
  /** Why each failed: the request and its codes, or what it saw. */
  why: string[];
}

/** A mutation acknowledged and then, at once, not in effect (what the user saw next). */
export interface NotInEffect {
  kind: Kind;
  at: number;
  detail: string;
}

/** Everything the load did that the invariants look at. */
export interface LoadState {
  accounts: Account[];
  /** Accounts never yet given the role: each is assigned and unassigned once. */
  subjects: Account[];
  registrations: Acked<Account>[];
  /** Sessions whose `logout` was acknowledged: their access tokens must stay refused. */
  endedSessions: Acked<{ token: string; userId: string }>[];
  /** Accounts whose unassign of the role was acknowledged: the permission must stay refused. */
  revoked: Acked<Account>[];
  /** Acknowledged `sendNotification`s. */
  sends: Acked<{ id: string; title: string; subscriber: number }>[];
  rounds: Round[];
  notInEffect: NotInEffect[];
}

export interface Subscriber {
  index: number;
  account: Account;
  gateway: number;
  /** Notification id → how many times it was pushed. */
  received: Map<string, number>;
  connections: number;
  stop(): Promise<void>;
}

const codeIn = (extensions: Record<string, unknown> | undefined) =>
  typeof extensions?.['code'] === 'string' ? extensions['code'] : 'NO_CODE';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A user with the app open: one graphql-ws connection subscribed to `notificationAdded`,
 * opened again (after half a second) whenever it ends, as a frontend would.
 */
export function startSubscriber(
  recorder: Recorder,
  gateways: readonly string[],
  index: number,
  account: Account,
): Subscriber {
  const gateway = index % gateways.length;
  const url = `${gateways[gateway]!.replace(/^http/, 'ws')}/graphql`;
  let stopped = false;
  let client: Client | undefined;
  const subscriber: Subscriber = {
    index,
    account,
    gateway,
    received: new Map(),
    connections: 0,
    async stop() {
      stopped = true;
      await client?.dispose();
      await loop;
    },
  };
  const event = (fields: Omit<Parameters<Recorder['liveEvent']>[0], 'subscriber' | 'gateway'>) =>
    recorder.liveEvent({ subscriber: index, gateway, ...fields });

  async function connectOnce(): Promise<void> {
    client = createClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${account.token}` },
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => undefined,
      on: {
        connected: () => {
          subscriber.connections += 1;
          event({ type: 'connected' });
        },
        closed: (closeEvent) => {
          const { code, reason } = closeEvent as { code?: number; reason?: string };
          if (!stopped) event({ type: 'closed', code, reason: reason ?? '' });
        },
      },
    });
    await new Promise<void>((resolve) => {
      client!.subscribe(
        { query: ADDED },
        {
          next: (result) => {
            if (result.errors?.length) {
              event({
                type: 'result-error',
                messages: result.errors.map((error) => error.message),
                codes: result.errors.map((error) => codeIn(error.extensions)),
              });
              return;
            }
            const id = (result.data as { notificationAdded?: { id: string } } | null | undefined)
              ?.notificationAdded?.id;
            if (id) subscriber.received.set(id, (subscriber.received.get(id) ?? 0) + 1);
          },
          error: (error) => {
            if (!stopped) {
              // graphql-ws gives the `error` message's GraphQL errors as an array; a close as
              // a CloseEvent (recorded by `closed`); anything else as is.
              const errors = Array.isArray(error)
                ? (error as { message: string; extensions?: Record<string, unknown> }[])
                : undefined;
              event({
                type: 'error',
                messages: errors
                  ? errors.map((item) => item.message)
                  : error instanceof Error
                    ? [error.message]
                    : [],
                codes: errors?.map((item) => codeIn(item.extensions)),
              });
            }
            resolve();
          },
          complete: () => resolve(),
        },
      );
    });
    await client.dispose();
  }

  const loop = (async () => {
    while (!stopped) {
      await connectOnce().catch(() => undefined);
      if (!stopped) await sleep(500);
    }
  })();
  return subscriber;
}

export interface LoadContext {
  recorder: Recorder;
  gateways: readonly string[];
  admin: { token: string };
  roleId: string;
  subscribers: readonly Subscriber[];
  state: LoadState;
  runTag: string;
}

/**
 * One lane of the steady load: rounds of every kind, one after the other, through the
 * gateways in turn, until `stopped()` says so.
 */
export async function runLane(
  context: LoadContext,
  lane: number,
  options: { pauseMs: number; stopped: () => boolean },
): Promise<void> {
  const { recorder, gateways, admin, roleId, subscribers, state } = context;
  for (let round = 0; !options.stopped(); round++) {
    const g = (lane + round) % gateways.length;
    const failed: Kind[] = [];
    const call = <T>(
      kind: string,
      query: string,
      token?: string,
      variables?: Record<string, unknown>,
      gateway = g,
    ) =>
      recorder.graphql<T>({ source: 'load', kind, gateway }, gateways[gateway]!, query, {
        token,
        variables,
      });
    const start = Date.now();
    const why: string[] = [];
    const fail = (kind: Kind, reason: string | Outcome<unknown>) => {
      if (!failed.includes(kind)) failed.push(kind);
      why.push(
        `${kind}: ${typeof reason === 'string' ? reason : `${reason.record.kind} ${reason.codes.join(',') || `HTTP ${reason.status}, no error code`}`}`,
      );
    };

    // register
    const email = `chaos-${context.runTag}-${lane}-${round}@example.com`;
    const registered = await call<{ register: { accessToken: string; user: { id: string } } }>(
      'register',
      REGISTER,
      undefined,
      { input: { email, password: PASSWORD, displayName: `chaos ${lane}.${round}` } },
    );
    if (registered.ok && registered.data) {
      const account = {
        email,
        password: PASSWORD,
        id: registered.data.register.user.id,
        token: registered.data.register.accessToken,
      };
      state.registrations.push({ at: registered.record.end, item: account });
      state.accounts.push(account);
      state.subjects.push(account);
    } else fail('register', registered);

    // login, me, logout (and the ended session refused at once)
    const who = state.accounts[Math.floor(Math.random() * state.accounts.length)]!;
    const login = await call<{ login: { accessToken: string } }>('login', LOGIN, undefined, {
      email: who.email,
      password: who.password,
    });
    if (login.ok && login.data) {
      const token = login.data.login.accessToken;
      const me = await call<{ me: { id: string } | null }>('me', ME, token);
      if (!(me.ok && me.data?.me?.id === who.id))
        fail('me', me.ok ? `me answered ${JSON.stringify(me.data)}` : me);
      const logout = await call<{ logout: boolean }>('logout', LOGOUT, token);
      if (logout.ok && logout.data?.logout === true) {
        state.endedSessions.push({ at: logout.record.end, item: { token, userId: who.id } });
        const after = await call<{ me: { id: string } | null }>('me (ended session)', ME, token);
        if (after.data?.me) {
          fail('logout', 'the ended session still answered me');
          state.notInEffect.push({
            kind: 'logout',
            at: after.record.end,
            detail: `me answered ${JSON.stringify(after.data)} right after the acknowledged logout (request #${after.record.seq})`,
          });
        } else if (!after.codes.includes('UNAUTHENTICATED'))
          fail(
            'logout',
            after.ok ? `me answered ${JSON.stringify(after.data)} after the logout` : after,
          );
      } else fail('logout', logout);
    } else {
      fail('login', login);
      fail('me', 'no session (login failed)');
      fail('logout', 'no session (login failed)');
    }

    // assign the role, use it on every instance; unassign it, and it is refused at once
    const subject = state.subjects.shift();
    if (subject) {
      const assign = await call<{ assignRole: boolean }>('assign', ASSIGN, admin.token, {
        u: subject.id,
        r: roleId,
      });
      if (assign.ok) {
        for (let other = 0; other < gateways.length; other++) {
          const use = await call('use permission', USE_PERMISSION, subject.token, undefined, other);
          if (!use.ok) fail('assign', use);
          if (use.codes.includes('FORBIDDEN'))
            state.notInEffect.push({
              kind: 'assign',
              at: use.record.end,
              detail: `${PERMISSION} refused (FORBIDDEN) on gateway ${other} right after the acknowledged assignRole (request #${use.record.seq})`,
            });
        }
      } else fail('assign', assign);
      const unassign = await call<{ unassignRole: boolean }>('unassign', UNASSIGN, admin.token, {
        u: subject.id,
        r: roleId,
      });
      if (unassign.ok) {
        state.revoked.push({ at: unassign.record.end, item: subject });
        const use = await call('use permission (revoked)', USE_PERMISSION, subject.token);
        if (use.ok) {
          fail('unassign', 'the permission was still granted');
          state.notInEffect.push({
            kind: 'unassign',
            at: use.record.end,
            detail: `${PERMISSION} still granted on gateway ${g} right after the acknowledged unassignRole (request #${use.record.seq})`,
          });
        } else if (!use.codes.includes('FORBIDDEN')) fail('unassign', use);
      } else fail('unassign', unassign);
    } else {
      fail('assign', 'no account left to assign the role to');
      fail('unassign', 'no account left to assign the role to');
    }

    // a notification to a user who holds a live subscription
    const subscriber = subscribers[(lane + round) % subscribers.length]!;
    const title = `chaos ${context.runTag} ${lane}.${round}`;
    const sent = await call<{ sendNotification: { id: string } }>('send', SEND, admin.token, {
      input: { userId: subscriber.account.id, type: 'chaos', title, body: '' },
    });
    if (sent.ok && sent.data)
      state.sends.push({
        at: sent.record.end,
        item: { id: sent.data.sendNotification.id, title, subscriber: subscriber.index },
      });
    else fail('send', sent);

    state.rounds.push({ lane, start, end: Date.now(), failed, why });
    await sleep(options.pauseMs);
  }
}

/** Registers an account through the gateway, retrying until it is acknowledged (setup only). */
export async function seedAccount(
  recorder: Recorder,
  gateway: string,
  email: string,
): Promise<Account> {
  for (let attempt = 0; ; attempt++) {
    const registered: Outcome<{ register: { accessToken: string; user: { id: string } } }> =
      await recorder.graphql({ source: 'setup', kind: 'register', gateway: 0 }, gateway, REGISTER, {
        variables: { input: { email, password: PASSWORD, displayName: email.split('@')[0] } },
      });
    if (registered.ok && registered.data)
      return {
        email,
        password: PASSWORD,
        id: registered.data.register.user.id,
        token: registered.data.register.accessToken,
      };
    if (attempt > 20)
      throw new Error(`could not register ${email}: ${JSON.stringify(registered.record)}`);
    await sleep(250);
  }
}

export type { RequestRecord };
