import type { IncomingMessage } from 'node:http';

/**
 * The end user's address: the socket's peer, or (only when the gateway sits behind a proxy
 * it trusts) the first X-Forwarded-For entry. A client cannot choose it otherwise.
 */
export function clientAddressOf(req: IncomingMessage, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for']?.toString().split(',')[0]?.trim();
    if (forwarded) return forwarded;
  }
  return req.socket.remoteAddress;
}
