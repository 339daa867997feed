import type { IncomingMessage } from 'node:http';
import {
  CloseCode,
  handleProtocols,
  makeServer,
  MessageType,
  type ServerOptions,
} from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '@platform/logger';

/** What each graphql-ws callback is handed about its connection (`ctx.extra`). */
export interface SocketExtra {
  socket: WebSocket;
  request: IncomingMessage;
}

/** The message types a client may send under graphql-transport-ws. */
const CLIENT_MESSAGES: ReadonlySet<string> = new Set([
  MessageType.ConnectionInit,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Subscribe,
  MessageType.Complete,
]);

/** A WebSocket message's text, however ws handed its bytes over. */
export function textOf(data: Buffer | ArrayBuffer | Buffer[]): string {
  return Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');
}

/** WebSocket allows a close reason of at most 123 bytes; ws throws on a longer one. */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * A close reason cut to what WebSocket allows: graphql-ws puts client text in some (the id of a
 * `subscribe` whose id is in use), and ws would throw on a long one instead of closing.
 */
function fitCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let fitted = '';
  for (const character of reason) {
    if (Buffer.byteLength(fitted + character) > MAX_CLOSE_REASON_BYTES - 3) break;
    fitted += character;
  }
  return `${fitted}...`;
}

/** Whether a message graphql-ws refused is one a client may not send at all. */
function notAClientMessage(text: string): boolean {
  try {
    const { type } = JSON.parse(text) as { type?: unknown };
    return typeof type !== 'string' || !CLIENT_MESSAGES.has(type);
  } catch {
    return true;
  }
}

/**
 * graphql-ws's server on a ws server: what `graphql-ws/use/ws` does, with the faults told
 * apart. That adapter answers any message graphql-ws throws on (a well-formed `next`, `error`
 * or `connection_ack` a client sent, which the protocol does not allow) with 4500 "Internal
 * server error", and writes it to the console, as it does a client's broken frame: here a
 * client's fault is closed 4400 "Invalid message received" (1009 and the like by ws itself) and
 * logged at debug; only a failure of this server is logged as an error and closed 4500.
 */
export function serveGraphqlWs<P extends Record<string, unknown> | undefined>(
  options: ServerOptions<P, SocketExtra>,
  wss: WebSocketServer,
  logger: Logger,
  /**
   * Pings every connection this often and drops one whose pong has not come back by the next
   * ping (graphql-ws's own keep-alive); 0 = none, for a caller that keeps its own.
   */
  keepAliveMs: number,
): { dispose(): Promise<void> } {
  const server = makeServer(options);
  wss.options.handleProtocols = handleProtocols;
  wss.on('error', (error) => logger.error({ err: error }, 'WebSocket server failed'));
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    // A frame ws cannot accept (too big, not UTF-8, a bad opcode): ws closes the connection
    // with the matching code itself.
    socket.on('error', (error) =>
      logger.debug({ err: error }, 'WebSocket client broke the protocol'),
    );
    let answered = true;
    socket.on('pong', () => (answered = true));
    const pings =
      keepAliveMs > 0
        ? setInterval(() => {
            if (!answered) return socket.terminate();
            answered = false;
            socket.ping();
          }, keepAliveMs)
        : undefined;
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) =>
          socket.close(code, reason === undefined ? reason : fitCloseReason(reason)),
        onMessage: (handle) =>
          socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
            const text = textOf(data);
            handle(text).catch((error: unknown) => {
              if (notAClientMessage(text)) {
                logger.debug({ err: error }, 'WebSocket client sent a server message');
                socket.close(CloseCode.BadRequest, 'Invalid message received');
                return;
              }
              if (socket.readyState !== socket.OPEN) {
                // The connection went while its answer was written: nothing failed here.
                logger.debug({ err: error }, 'WebSocket connection ended mid-message');
                return;
              }
              logger.error({ err: error }, 'WebSocket message failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request },
    );
    socket.once('close', (code, reason) => {
      clearInterval(pings);
      closed(code, reason.toString()).catch((error: unknown) =>
        logger.error({ err: error }, 'could not end the subscriptions of a closed connection'),
      );
    });
  });
  return {
    async dispose() {
      for (const socket of wss.clients) socket.close(1001, 'Going away');
    },
  };
}
