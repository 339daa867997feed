import type { IncomingMessage, Server } from 'node:http';
import { getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatResultErrors } from '@platform/errors';
import { createDocumentCache } from '@platform/http-server';
import { newCorrelationId, type Logger } from '@platform/logger';
import type { Identity, SessionRevocations, TokenVerifier } from '@platform/tokens';
import { checkOperation, queryTooComplex, type OperationLimits } from '../limits/operation-cost';
import type { FederatedSubscriptions } from './federated-subscriptions';

export interface SubscriptionLimits {
  /** Concurrent subscriptions one user may hold on this gateway instance. */
  perUser: number;
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
  authorization: string;
  userAgent: string | undefined;
  clientAddress: string | undefined;
  alive: boolean;
}

interface SubscriptionContext {
  connection: Connection;
  plan: ReturnType<FederatedSubscriptions['plan']>;
}

/**
 * Passes results on while the client keeps up: once more than `maxBufferedBytes` wait unsent
 * on its socket, calls `tooSlow` (which closes it) and stops, instead of buffering more.
 */
export async function* unlessTooSlow<T>(
  results: AsyncIterable<T>,
  socket: { readonly bufferedAmount: number },
  maxBufferedBytes: number,
  tooSlow: () => void,
): AsyncGenerator<T> {
  for await (const result of results) {
    if (socket.bufferedAmount > maxBufferedBytes) {
      tooSlow();
      return;
    }
    yield result;
  }
}

/** Close codes (graphql-ws reserves 4400-4499 for its protocol; 4401 = unauthorized). */
const UNAUTHORIZED = 4401;
const TRY_AGAIN_LATER = 1013;

/**
 * graphql-ws for clients on the gateway's `/graphql` (the HTTP port). `connection_init`
 * carries `{ authorization: "Bearer <token>" }`; a missing, invalid or expired token closes
 * the connection with 4401, and so does the end of its session (checked every
 * `sessionCheckMs`) or the token's expiry. Subscriptions are planned and executed across the
 * subgraphs by `FederatedSubscriptions`.
 */
export function attachSubscriptionServer(options: {
  server: Server;
  federated: FederatedSubscriptions;
  tokens: TokenVerifier;
  revocations: SessionRevocations;
  limits: SubscriptionLimits;
  /** The same limits as over HTTP, on each subscription's selection before it is planned. */
  operationLimits: OperationLimits;
  clientAddressOf: (req: IncomingMessage) => string | undefined;
  logger: Logger;
}): { close(): Promise<void>; connections(): number } {
  const { federated, limits, logger } = options;
  const wss = new WebSocketServer({ server: options.server, path: '/graphql' });
  const connections = new Map<WebSocket, Connection>();
  const perUser = new Map<string, number>();
  const parseDocument = createDocumentCache(federated.schema);

  function close(socket: WebSocket, code: number, reason: string): void {
    connections.delete(socket);
    socket.close(code, reason);
  }

  async function* counted(
    context: SubscriptionContext,
    results: AsyncGenerator<ExecutionResult>,
  ): AsyncGenerator<ExecutionResult> {
    const { userId } = context.connection.identity;
    const { socket } = context.connection;
    perUser.set(userId, (perUser.get(userId) ?? 0) + 1);
    try {
      yield* unlessTooSlow(results, socket, limits.maxBufferedBytes, () => {
        logger.warn({ userId, buffered: socket.bufferedAmount }, 'slow subscriber disconnected');
        close(socket, TRY_AGAIN_LATER, 'Client too slow: outbound buffer full');
      });
    } finally {
      const left = (perUser.get(userId) ?? 1) - 1;
      if (left > 0) perUser.set(userId, left);
      else perUser.delete(userId);
    }
  }

  const cleanup = useServer<
    Record<string, unknown> | undefined,
    { socket: WebSocket; request: IncomingMessage }
  >(
    {
      schema: federated.schema,
      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const authorization = ctx.connectionParams?.['authorization'];
        let identity: Identity | null = null;
        if (typeof authorization === 'string')
          identity = await options.tokens.verifyHeader(authorization).catch(() => null);
        if (!identity || typeof authorization !== 'string') {
          socket.close(UNAUTHORIZED, 'Unauthorized');
          return false;
        }
        const connection: Connection = {
          socket,
          identity,
          authorization,
          userAgent: request.headers['user-agent'],
          clientAddress: options.clientAddressOf(request),
          alive: true,
        };
        connections.set(socket, connection);
        socket.on('pong', () => (connection.alive = true));
        socket.once('close', () => connections.delete(socket));
        return true;
      },
      onSubscribe(ctx, _id, payload) {
        const connection = connections.get(ctx.extra.socket);
        if (!connection)
          return [new GraphQLError('Not connected', { extensions: { code: 'UNAUTHENTICATED' } })];
        const document = parseDocument(payload.query);
        if (!('kind' in document)) return document;
        const operation = getOperationAST(document, payload.operationName ?? undefined);
        if (operation) {
          const { exceeded } = checkOperation(
            federated.schema,
            document,
            operation,
            payload.variables ?? undefined,
            options.operationLimits,
          );
          if (exceeded) return [queryTooComplex(exceeded, false)];
        }
        let plan: SubscriptionContext['plan'];
        try {
          plan = federated.plan(document, payload.operationName ?? undefined);
        } catch (error) {
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        if ((perUser.get(connection.identity.userId) ?? 0) >= limits.perUser)
          return [
            new GraphQLError(`At most ${limits.perUser} subscriptions at once`, {
              extensions: { code: 'RATE_LIMITED', retryAfter: 60 },
            }),
          ];
        const contextValue: SubscriptionContext = { connection, plan };
        const args: ExecutionArgs = {
          schema: federated.schema,
          document,
          operationName: payload.operationName ?? undefined,
          variableValues: payload.variables ?? {},
          contextValue,
        };
        return args;
      },
      subscribe(args) {
        const context = args.contextValue as SubscriptionContext;
        const { connection } = context;
        return counted(
          context,
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
        );
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        formatResultErrors(result, (internal) =>
          logger.error({ err: internal }, 'subscription event failed'),
        ),
    },
    wss,
  );

  // Ended sessions and expired tokens: their connections close within one check.
  const sessionCheck = setInterval(() => {
    const now = Date.now();
    for (const [socket, connection] of connections)
      if (connection.identity.expiresAt <= now) close(socket, UNAUTHORIZED, 'Token expired');
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
        connections.delete(socket);
        socket.terminate();
        continue;
      }
      connection.alive = false;
      socket.ping();
    }
  }, limits.pingMs);
  keepAlive.unref();

  return {
    connections: () => connections.size,
    async close() {
      clearInterval(sessionCheck);
      clearInterval(keepAlive);
      await cleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
