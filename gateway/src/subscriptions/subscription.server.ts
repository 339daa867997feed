import type { IncomingMessage, Server } from 'node:http';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type ExecutionArgs,
  type GraphQLFormattedError,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  AppError,
  formatGraphQLError,
  formatResultErrors,
  OUTAGE_RETRY_AFTER_SECONDS,
  toGraphQLError,
} from '@platform/errors';
import {
  createDocumentCache,
  recordWebSocketOperation,
  serveGraphqlWs,
} from '@platform/http-server';
import { newCorrelationId, type Logger } from '@platform/logger';
import { inSpan, SpanKind } from '@platform/telemetry';
import type { Identity, SessionRevocations, TokenVerifier } from '@platform/tokens';
import { checkAccessToken } from '../access/public-operations';
import { literalProblemOf, variableProblemOf } from '../input/well-formed-text.plugin';
import {
  checkOperation,
  excessFragments,
  excessNesting,
  MAX_DOCUMENT_TOKENS,
  queryTooComplex,
  type OperationLimits,
} from '../limits/operation-cost';
import type { EarlyRefusal } from '../limits/operation-limits.plugin';
import type { BudgetCaller } from '../limits/request-budget';
import { UpstreamSubscriptionError, type FederatedSubscriptions } from './federated-subscriptions';
import type { SharedLimits } from './shared-limits';
import { byteLength, completedId, endingOnce, unlessTooSlow } from './socket-messages';

export interface SubscriptionLimits {
  /** Concurrent subscriptions one user may hold, on all gateway instances together. */
  perUser: number;
  /** Concurrent WebSocket connections one user may hold, on all gateway instances together. */
  connectionsPerUser: number;
  /** Largest message accepted before `connection_init` is accepted (bytes). */
  maxUnauthenticatedMessageBytes: number;
  /** Largest message accepted at all (bytes); bigger frames close the connection (1009). */
  maxMessageBytes: number;
  /** A client whose unsent data exceeds this is disconnected (1013) instead of buffered. */
  maxBufferedBytes: number;
  /** How often open connections are checked for an ended session or an expired token. */
  sessionCheckMs: number;
  /** WebSocket ping interval; a client that misses a pong is dropped. */
  pingMs: number;
}

interface Connection {
  socket: WebSocket;
  identity: Identity;
  /** The connection's lease in the shared per-user limit (also the prefix of its slots'). */
  lease: string;
  /**
   * Every subscription of the connection from its subscribe message until its events end.
   * Not keyed by id: graphql-ws forgets an id on `complete`, before the subscription that had
   * it has ended here (while it is admitted, or while its events stop).
   */
  subscriptions: Set<Subscription>;
  /** Subscribe messages admitted so far (names each slot's lease). */
  admitted: number;
  authorization: string;
  userAgent: string | undefined;
  clientAddress: string | undefined;
  alive: boolean;
}

/** One subscribe message's subscription, from its admission until its events end. */
interface Subscription {
  readonly id: string;
  /** The client completed it, or the connection ended: it must not start, or must stop. */
  ended: boolean;
  /** Its lease in the shared per-user limit while it holds one of the user's slots. */
  lease?: string | undefined;
  /** The subgraph its events come from (the root field's), once planned. */
  upstream?: string | undefined;
  /** Ends its events once they run, whether or not graphql-ws still knows its id. */
  stop?: (() => void) | undefined;
}

interface SubscriptionContext {
  connection: Connection;
  subscription: Subscription;
  plan: ReturnType<FederatedSubscriptions['plan']>;
}

/**
 * A subscription's error payload as a client may see it. Refusals made here (limits, plans)
 * already carry the contract's code and stay as they are; a failure thrown while the
 * subscription ran (graphql-ws passes its bare message) is translated like any other error:
 * a subgraph's errors keep their codes (SERVICE_UNAVAILABLE when its dependencies are down),
 * a dependency outage here becomes SERVICE_UNAVAILABLE, anything else is masked and logged.
 */
export function formatSubscriptionFailure(
  errors: readonly GraphQLError[],
  onInternal: (error: unknown) => void,
): GraphQLFormattedError[] | undefined {
  if (!errors.some((error) => error.originalError)) return undefined;
  return errors.flatMap((error) => {
    const thrown = error.originalError;
    if (!thrown) return [error.toJSON()];
    if (thrown instanceof UpstreamSubscriptionError)
      return thrown.errors.map((upstream) => formatGraphQLError(upstream, upstream, onInternal));
    return [formatGraphQLError({ message: error.message }, thrown, onInternal)];
  });
}

/** Close codes (graphql-ws reserves 4400-4499 for its protocol; 4401 = unauthorized). */
const UNAUTHORIZED = 4401;
/**
 * The connection's token expired: graphql-ws's Forbidden, which its client retries (4401 it
 * never does), calling `connectionParams` again, where an app returns a fresh token. A client
 * that sends the expired token again is refused at `connection_init` with 4401, and stops.
 */
const TOKEN_EXPIRED = 4403;
const TOO_MANY_CONNECTIONS = 4429;
const MESSAGE_TOO_BIG = 1009;
const INTERNAL_ERROR = 1011;
const SERVICE_RESTART = 1012;
const TRY_AGAIN_LATER = 1013;

/** The answer to a subscribe message whose id is still held by a subscription ending. */
const idStillInUse = () =>
  new GraphQLError('This subscription id is still ending; use another id or try again', {
    extensions: { code: 'BAD_USER_INPUT' },
  });

/** The answer to a subscribe message on a connection this server already let go. */
const notConnected = () =>
  new GraphQLError('Not connected', { extensions: { code: 'UNAUTHENTICATED' } });

/** At most this many errors about a subscribe message's variables (graphql-js's default: 50). */
const MAX_VARIABLE_ERRORS = 20;

/** The answer to a subscribe message whose subscription ended before it was admitted. */
const subscriptionEnded = () =>
  new GraphQLError('Subscription ended', { extensions: { code: 'BAD_USER_INPUT' } });

/**
 * graphql-ws for clients on the gateway's `/graphql` (the HTTP port). `connection_init`
 * carries `{ authorization: "Bearer <token>" }`; a missing, invalid or expired token closes
 * the connection with 4401, and so does the end of its session (checked every
 * `sessionCheckMs`); the token's expiry closes it with 4403, which clients retry. A token that cannot be checked (Redis or the auth
 * service down) closes it with 1013 "Try again later": retryable, the token not refused.
 * Subscriptions are planned and executed across the subgraphs by `FederatedSubscriptions`;
 * one that fails for an outage ends with SERVICE_UNAVAILABLE in its error payload.
 */
export function attachSubscriptionServer(options: {
  server: Server;
  federated: FederatedSubscriptions;
  tokens: TokenVerifier;
  revocations: SessionRevocations;
  limits: SubscriptionLimits;
  /** Where the per-user limits are counted, across every gateway instance (Redis). */
  shared: SharedLimits;
  /** The same limits as over HTTP, on each subscription's selection before it is planned. */
  operationLimits: OperationLimits;
  clientAddressOf: (req: IncomingMessage) => string | undefined;
  /**
   * A subscribe message's text this instance has not validated before: charged to the
   * connection's caller (as over HTTP, `newDocumentCharge`); the refusal, or undefined.
   */
  chargeNewDocument?: (caller: BudgetCaller, source: string) => Promise<EarlyRefusal | undefined>;
  logger: Logger;
}): {
  close(): Promise<void>;
  connections(): number;
  subscriptions(): number;
  /**
   * A subgraph's upstream connection dropped: events were lost, so every client holding a
   * subscription it carried is closed with 1012 (Service Restart), which graphql-ws clients
   * reconnect after (and then catch up, docs/notifications.md). Returns how many.
   */
  upstreamLost(subgraph: string): number;
} {
  const { federated, limits, logger, shared } = options;
  let connectionSeq = 0;
  // Frames beyond maxMessageBytes are refused by ws before they are buffered (1009).
  const wss = new WebSocketServer({
    server: options.server,
    path: '/graphql',
    maxPayload: limits.maxMessageBytes,
  });
  const connections = new Map<WebSocket, Connection>();
  /** Per user: subscription slots and connections held on this instance. */
  const slotsHeld = new Map<string, number>();
  const connectionsHeld = new Map<string, number>();
  const parseDocument = createDocumentCache(federated.schema, {
    maxTokens: MAX_DOCUMENT_TOKENS,
    // As over HTTP (textNestingPlugin): too many fragment spreads are not validated at all.
    beforeValidation: (document) => {
      const exceeded = excessFragments(document);
      return exceeded && [queryTooComplex(exceeded, false)];
    },
  });

  const adjust = (counts: Map<string, number>, userId: string, by: number) => {
    const next = (counts.get(userId) ?? 0) + by;
    if (next > 0) counts.set(userId, next);
    else counts.delete(userId);
  };

  /** Gives back a subscription's slot, if it holds one; safe to call again. */
  function release(connection: Connection, subscription: Subscription): void {
    const { lease } = subscription;
    if (lease === undefined) return;
    subscription.lease = undefined;
    adjust(slotsHeld, connection.identity.userId, -1);
    void shared.release('subscriptions', connection.identity.userId, lease);
  }

  /**
   * Ends a subscription at once, wherever it is: its slot is given back, one still being
   * admitted is refused when its admission goes on, and running events are stopped.
   */
  function end(connection: Connection, subscription: Subscription): void {
    subscription.ended = true;
    release(connection, subscription);
    subscription.stop?.();
  }

  /** Forgets a connection and everything it held, once, whichever way it ended. */
  function forget(socket: WebSocket): void {
    const connection = connections.get(socket);
    if (!connection) return;
    connections.delete(socket);
    for (const subscription of connection.subscriptions) end(connection, subscription);
    adjust(connectionsHeld, connection.identity.userId, -1);
    void shared.release('connections', connection.identity.userId, connection.lease);
  }

  function close(socket: WebSocket, code: number, reason: string): void {
    forget(socket);
    socket.close(code, reason);
  }

  // Ahead of graphql-ws's own handler, on every message: before the connection is
  // authenticated only a small `connection_init` is read (a stranger cannot make the gateway
  // hold large frames); after, a `complete` ends the subscriptions of its id at once (graphql-ws
  // ends one only when its next event arrives, and forgets one it is still admitting).
  wss.on('connection', (socket: WebSocket) => {
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const connection = connections.get(socket);
      if (!connection) {
        if (byteLength(data) > limits.maxUnauthenticatedMessageBytes)
          socket.close(MESSAGE_TOO_BIG, 'Message too big before authentication');
        return;
      }
      const completed = completedId(data);
      if (completed === undefined) return;
      for (const subscription of connection.subscriptions)
        if (subscription.id === completed) end(connection, subscription);
    });
  });

  /**
   * The subscribe message's text parsed, or the errors refusing it: its nesting is measured
   * before it is parsed (as over HTTP), as too deep a nesting exhausts the parser.
   */
  function parseSubscribe(payload: SubscribePayload): ReturnType<typeof parseDocument> {
    const nesting = excessNesting(payload.query);
    return nesting ? [queryTooComplex(nesting, false)] : parseDocument(payload.query);
  }

  /**
   * A text not validated here before, charged to the connection's caller: the refusal, if any;
   * undefined at once (no await) for a text validated before.
   */
  function chargeNewDocument(
    socket: WebSocket,
    query: string,
  ): Promise<EarlyRefusal | undefined> | undefined {
    const connection = connections.get(socket);
    if (!connection || !options.chargeNewDocument || parseDocument.has(query)) return undefined;
    const { identity, clientAddress } = connection;
    return options.chargeNewDocument({ session: identity, clientAddress }, query);
  }

  /** A new subscribe text once its charge settled: parsed, or the errors refusing it. */
  async function parsedAfterCharge(
    charge: Promise<EarlyRefusal | undefined>,
    payload: SubscribePayload,
  ): Promise<ReturnType<typeof parseDocument>> {
    const refused = await charge;
    return refused ? [refused.error] : parseSubscribe(payload);
  }

  /** Answers a subscribe message: the execution arguments, or the errors refusing it. */
  async function admit(
    socket: WebSocket,
    subscription: Subscription,
    payload: SubscribePayload,
    parsed: ReturnType<typeof parseDocument>,
  ): Promise<ExecutionArgs | readonly GraphQLError[]> {
    const connection = connections.get(socket);
    if (!connection) return [notConnected()];
    if (!('kind' in parsed)) return parsed;
    const document = parsed;
    // The same input rules as over HTTP (well-formed-text.plugin.ts).
    const problem =
      (payload.variables && variableProblemOf(payload.variables)) || literalProblemOf(document);
    if (problem) return [toGraphQLError(AppError.badInput(problem.where, problem.problem))];
    // None to run (an unknown name, "" included, or several unnamed): refused here, as
    // graphql-ws would refuse it after admission, when the slot was already taken.
    const operation = getOperationAST(document, payload.operationName ?? undefined);
    if (!operation)
      return [
        new GraphQLError(
          payload.operationName == null
            ? 'The document has several operations: name the one to run'
            : `The document has no operation named "${payload.operationName.slice(0, 60)}"`,
          { extensions: { code: 'BAD_USER_INPUT' } },
        ),
      ];
    // Values that fit the operation's variables, as over HTTP (a missing `Int!`, a string for
    // an `Int`): refused here, before a slot is taken, not by a subgraph once it runs (an
    // internal error at the first event, or at every one for a variable of a later fetch).
    const coercion = getVariableValues(
      federated.schema,
      operation.variableDefinitions ?? [],
      payload.variables ?? {},
      { maxErrors: MAX_VARIABLE_ERRORS },
    );
    if (coercion.errors)
      return coercion.errors.map(
        (error) => new GraphQLError(error.message, { extensions: { code: 'BAD_USER_INPUT' } }),
      );
    const { exceeded } = checkOperation(
      federated.schema,
      document,
      operation,
      payload.variables ?? undefined,
      options.operationLimits,
    );
    if (exceeded) return [queryTooComplex(exceeded, false)];
    let plan: SubscriptionContext['plan'];
    try {
      plan = federated.plan(document, payload.operationName ?? undefined, payload.variables ?? {});
    } catch (error) {
      // The planner refuses the operation (an unknown operation name, a query sent here), or
      // its variables: the caller's fault, whatever code federation gave it (INVALID_GRAPHQL is
      // none of ours).
      if (error instanceof GraphQLError)
        return [new GraphQLError(error.message, { extensions: { code: 'BAD_USER_INPUT' } })];
      throw error;
    }
    // Ended while its new text's charge was awaited (a `complete` sent right after the
    // subscribe): it takes no slot.
    if (subscription.ended) return [subscriptionEnded()];
    // The slot is held here at once (a `complete` or a close meanwhile gives it back),
    // and counted in Redis against every instance's: one script checks and takes it, so
    // a burst of subscribe messages, at any gateways, cannot all pass. Its lease is named
    // after the admission, not the id, which a client may reuse.
    const { userId } = connection.identity;
    const lease = `${connection.lease}:${++connection.admitted}`;
    subscription.lease = lease;
    subscription.upstream = plan.primary.serviceName;
    adjust(slotsHeld, userId, 1);
    let taken: boolean;
    try {
      taken = await shared.acquire('subscriptions', userId, lease, limits.perUser);
    } catch (error) {
      logger.warn({ err: error }, 'could not count the subscription; refusing it');
      release(connection, subscription);
      return [
        new GraphQLError('Service temporarily unavailable; try again shortly', {
          extensions: { code: 'SERVICE_UNAVAILABLE', retryAfter: OUTAGE_RETRY_AFTER_SECONDS },
        }),
      ];
    }
    if (!taken) {
      release(connection, subscription);
      return [
        new GraphQLError(`At most ${limits.perUser} subscriptions at once`, {
          extensions: { code: 'RATE_LIMITED', retryAfter: 60 },
        }),
      ];
    }
    // Ended while the lease was taken: give it back (the release before it may have reached
    // Redis first).
    if (subscription.ended) {
      void shared.release('subscriptions', userId, lease);
      return [subscriptionEnded()];
    }
    const contextValue: SubscriptionContext = { connection, subscription, plan };
    const args: ExecutionArgs = {
      schema: federated.schema,
      document,
      operationName: payload.operationName ?? undefined,
      variableValues: payload.variables ?? {},
      contextValue,
    };
    return args;
  }

  const cleanup = serveGraphqlWs<Record<string, unknown> | undefined>(
    {
      schema: federated.schema,
      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const authorization = ctx.connectionParams?.['authorization'];
        if (typeof authorization !== 'string') {
          socket.close(UNAUTHORIZED, 'Unauthorized');
          return false;
        }
        let identity: Identity | null;
        try {
          const check = await checkAccessToken(
            (header) => options.tokens.verifyHeader(header),
            authorization,
          );
          if (check.tokenUnchecked) {
            socket.close(TRY_AGAIN_LATER, 'Try again later');
            return false;
          }
          identity = check.identity;
        } catch (error) {
          logger.error({ err: error }, 'subscriber token check failed');
          socket.close(INTERNAL_ERROR, 'Internal error');
          return false;
        }
        if (!identity) {
          socket.close(UNAUTHORIZED, 'Unauthorized');
          return false;
        }
        if (socket.readyState !== socket.OPEN) return false;
        const lease = shared.leaseName(++connectionSeq);
        let taken: boolean;
        try {
          taken = await shared.acquire(
            'connections',
            identity.userId,
            lease,
            limits.connectionsPerUser,
          );
        } catch (error) {
          logger.warn({ err: error }, 'could not count the connection; refusing it');
          socket.close(TRY_AGAIN_LATER, 'Try again later');
          return false;
        }
        if (!taken) {
          socket.close(TOO_MANY_CONNECTIONS, `At most ${limits.connectionsPerUser} connections`);
          return false;
        }
        if (socket.readyState !== socket.OPEN) {
          void shared.release('connections', identity.userId, lease);
          return false;
        }
        adjust(connectionsHeld, identity.userId, 1);
        const connection: Connection = {
          socket,
          identity,
          lease,
          subscriptions: new Set(),
          admitted: 0,
          authorization,
          userAgent: request.headers['user-agent'],
          clientAddress: options.clientAddressOf(request),
          alive: true,
        };
        connections.set(socket, connection);
        socket.on('pong', () => (connection.alive = true));
        socket.once('close', () => forget(socket));
        return true;
      },
      async onSubscribe(ctx, id, payload) {
        const started = performance.now();
        const { socket } = ctx.extra;
        // Known from the subscribe message on (before any await), so that a `complete` for its
        // id, or the connection's end, reaches it wherever it is.
        const subscription: Subscription = { id, ended: false };
        const connection = connections.get(socket);
        // An id the client completed is free again once its subscription has ended here, not
        // before: graphql-ws would otherwise mix the two up (events, and its record of the id).
        const inUse = [...(connection?.subscriptions ?? [])].some((one) => one.id === id);
        if (!inUse) connection?.subscriptions.add(subscription);
        // A text validated before is parsed at once: no await before admit() takes the slot.
        const charge = inUse ? undefined : chargeNewDocument(socket, payload.query);
        // A connection this server closed (its session ended, its client too slow, ...) reads
        // messages until the client answers the close, up to 30 s: none of them is parsed.
        const parsed = !connection
          ? [notConnected()]
          : inUse
            ? [idStillInUse()]
            : charge
              ? await parsedAfterCharge(charge, payload)
              : parseSubscribe(payload);
        const operation =
          'kind' in parsed
            ? getOperationAST(parsed, payload.operationName ?? undefined)
            : undefined;
        const name = payload.operationName ?? operation?.name?.value;
        // One span per subscribe message (its events are spans of their own, each a child
        // of the work that caused it): what was asked, and how it was answered.
        return inSpan(
          `subscribe ${name ?? 'anonymous'}`,
          {
            kind: SpanKind.SERVER,
            attributes: {
              'graphql.operation.type': operation?.operation ?? 'unknown',
              ...(name ? { 'graphql.operation.name': name } : {}),
            },
          },
          async (span) => {
            const answer = await admit(socket, subscription, payload, parsed);
            const errorCodes = Array.isArray(answer)
              ? answer.map((error: GraphQLError) => error.extensions['code'])
              : [];
            // Refused: it never runs (admit gave back any slot it took).
            if (Array.isArray(answer)) connection?.subscriptions.delete(subscription);
            if (errorCodes.length > 0)
              span.setAttribute('graphql.error.codes', errorCodes.map(String).join(','));
            // Counted like an HTTP operation (graphql_operations_total, type subscription).
            recordWebSocketOperation({
              operationName: name,
              type: operation?.operation ?? 'unknown',
              started,
              errorCodes,
            });
            return answer;
          },
        );
      },
      onError: (_ctx, _id, _payload, errors) =>
        formatSubscriptionFailure(errors, (internal) =>
          logger.error({ err: internal }, 'subscription failed'),
        ),
      subscribe(args) {
        const context = args.contextValue as SubscriptionContext;
        const { connection, subscription } = context;
        const { socket } = connection;
        const events = unlessTooSlow(
          federated.run({
            plan: context.plan,
            document: args.document,
            operationName: args.operationName ?? undefined,
            variables: args.variableValues ?? {},
            context: {
              authorization: connection.authorization,
              correlationId: newCorrelationId(),
              userAgent: connection.userAgent,
              clientAddress: connection.clientAddress,
            },
          }),
          socket,
          limits.maxBufferedBytes,
          () => {
            logger.warn(
              { userId: connection.identity.userId, buffered: socket.bufferedAmount },
              'slow subscriber disconnected',
            );
            close(socket, TRY_AGAIN_LATER, 'Client too slow: outbound buffer full');
          },
        );
        // However its events end (run out, failed, ended by graphql-ws or by `end`), its slot
        // is given back and the connection forgets it.
        const { results, stop } = endingOnce(events, () => {
          release(connection, subscription);
          connection.subscriptions.delete(subscription);
        });
        subscription.stop = stop;
        // Ended since it was admitted: its events stop before the first.
        if (subscription.ended) stop();
        return results;
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        formatResultErrors(result, (internal) =>
          logger.error({ err: internal }, 'subscription event failed'),
        ),
    },
    wss,
    logger,
    0, // the connections' pings are this server's own (below), authenticated ones only
  );

  // Ended sessions and expired tokens: their connections close within one check.
  const sessionCheck = setInterval(() => {
    const now = Date.now();
    for (const [socket, connection] of connections)
      if (connection.identity.expiresAt <= now) close(socket, TOKEN_EXPIRED, 'Token expired');
    const sessions = [...new Set([...connections.values()].map((c) => c.identity.sessionId))];
    options.revocations.revokedAmong(sessions).then(
      (ended) => {
        for (const [socket, connection] of connections)
          if (ended.has(connection.identity.sessionId))
            close(socket, UNAUTHORIZED, 'Session ended');
      },
      (error: unknown) => logger.warn({ err: error }, 'could not check subscriber sessions'),
    );
  }, limits.sessionCheckMs);
  sessionCheck.unref();

  const keepAlive = setInterval(() => {
    for (const [socket, connection] of connections) {
      if (!connection.alive) {
        forget(socket);
        socket.terminate();
        continue;
      }
      connection.alive = false;
      socket.ping();
    }
  }, limits.pingMs);
  keepAlive.unref();

  return {
    upstreamLost(subgraph) {
      let closed = 0;
      for (const [socket, connection] of connections)
        if ([...connection.subscriptions].some((one) => one.upstream === subgraph)) {
          close(socket, SERVICE_RESTART, 'Upstream restarted; reconnect and catch up');
          closed += 1;
        }
      if (closed > 0) logger.info({ subgraph, closed }, 'closed subscribers of a lost upstream');
      return closed;
    },
    connections: () => connections.size,
    subscriptions: () => [...slotsHeld.values()].reduce((sum, held) => sum + held, 0),
    async close() {
      shared.close();
      clearInterval(sessionCheck);
      clearInterval(keepAlive);
      await cleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
