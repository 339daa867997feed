import type { Server } from 'node:http';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { formatResultErrors, toAppError, toGraphQLError } from '@platform/errors';
import { createDocumentCache, serveGraphqlWs } from '@platform/http-server';
import type { Logger } from '@platform/logger';
import type { Identity, TokenVerifier } from '@platform/tokens';
import { isInternalCredential } from '@platform/grpc';
import { carriedTraceContext } from '@platform/telemetry';

/** What the gateway puts in `connection_init`: the platform's internal credential. */
export interface UpstreamConnectionParams {
  internalToken?: string;
}

/**
 * What an event's `next` message carries in its extensions besides the data: the W3C trace
 * context of the work that produced the event (a resolver put it on the subscription's
 * context with `passTraceContext`), so the gateway's per-event execution joins that trace.
 */
export interface UpstreamEventExtensions {
  traceContext?: Record<string, string>;
}

/** What the gateway puts in each `subscribe` message's extensions: the end user's token. */
export interface UpstreamSubscribeExtensions {
  authorization?: string;
}

const SERVICE_RESTART = 1012;
/** A gateway whose connection stops answering pings is dropped within two of these. */
const KEEP_ALIVE_MS = 12_000;

/**
 * graphql-ws on the subgraph's `/graphql`, for the gateway only: the connection carries the
 * internal credential, and every subscription carries its end user's access token, which is
 * verified here again. One connection serves every subscription of a gateway instance.
 */
export function attachSubscriptionServer<TContext>(options: {
  server: Server;
  schema: GraphQLSchema;
  internalToken: string;
  tokens: Pick<TokenVerifier, 'verifyHeader'>;
  logger: Logger;
  createContext: (viewer: Identity) => TContext;
}): {
  close(): Promise<void>;
  connections(): number;
  subscriptions(): number;
  /**
   * Closes every connection with 1012 (Service Restart), their subscriptions with them: the
   * gateways' way of learning that events were lost (they close their clients with 1012,
   * who reconnect and catch up). Returns how many were closed.
   */
  restart(reason: string): number;
} {
  const { schema, logger } = options;
  const wss = new WebSocketServer({ server: options.server, path: '/graphql' });
  const parseDocument = createDocumentCache(schema);
  // Per connection, the subscriptions whose source is running (graphql-ws keeps them by id).
  const open = new Set<{ subscriptions: Record<string, unknown> }>();

  const cleanup = serveGraphqlWs(
    {
      schema,
      onConnect: (ctx) => {
        const accepted = isInternalCredential(
          (ctx.connectionParams as UpstreamConnectionParams | undefined)?.internalToken,
          options.internalToken,
        );
        if (accepted) open.add(ctx);
        return accepted;
      },
      onClose: (ctx) => void open.delete(ctx),
      onSubscribe: async (_ctx, _id, payload) => {
        const extensions = payload.extensions as UpstreamSubscribeExtensions | undefined;
        let viewer: Identity | null;
        try {
          viewer = await options.tokens.verifyHeader(extensions?.authorization);
        } catch (error) {
          // Refused (UNAUTHENTICATED) or not checkable now (SERVICE_UNAVAILABLE, retryable).
          const refusal = toAppError(error);
          if (refusal.code === 'INTERNAL_SERVER_ERROR')
            logger.error({ err: error }, 'subscriber token check failed');
          return [toGraphQLError(refusal)];
        }
        if (!viewer)
          return [new GraphQLError('Not signed in', { extensions: { code: 'UNAUTHENTICATED' } })];
        // The gateway sends the same few plan fetches again and again: parsed once.
        const document = parseDocument(payload.query);
        if (!('kind' in document)) return document;
        return {
          schema,
          document,
          variableValues: payload.variables ?? undefined,
          operationName: payload.operationName ?? undefined,
          contextValue: options.createContext(viewer),
        };
      },
      // Like the HTTP path: errors leave with the contract's codes, internals masked and logged.
      onNext: (_ctx, _id, _payload, args, result) => {
        const formatted = formatResultErrors(result, (internal) =>
          logger.error({ err: internal }, 'subscription resolver failed'),
        );
        const contextValue = args.contextValue;
        const traceContext =
          typeof contextValue === 'object' && contextValue !== null
            ? carriedTraceContext(contextValue)
            : undefined;
        if (!traceContext) return formatted;
        const extensions: UpstreamEventExtensions = { traceContext };
        const base = formatted ?? result;
        return { ...base, extensions: { ...base.extensions, ...extensions } };
      },
      onError: (_ctx, _id, _payload, errors) => {
        logger.debug({ errors: errors.map((error) => error.message) }, 'subscription refused');
      },
    },
    wss,
    logger,
    KEEP_ALIVE_MS,
  );

  return {
    connections: () => wss.clients.size,
    restart(reason) {
      const sockets = [...wss.clients];
      for (const socket of sockets) socket.close(SERVICE_RESTART, reason);
      return sockets.length;
    },
    subscriptions: () => {
      let count = 0;
      for (const ctx of open)
        for (const source of Object.values(ctx.subscriptions)) if (source) count++;
      return count;
    },
    async close() {
      await cleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
