import type { IncomingMessage } from 'node:http';

/**
 * How many proxies in front of the gateway to trust: 0 trusts none (the socket's peer is the
 * client), 1 trusts the one the gateway's connections come from (an ingress controller),
 * 2 that one and the balancer in front of it, and so on. The `TRUST_PROXY` setting.
 */
export type TrustedProxies = number;

/**
 * The end user's address, as the trusted proxies saw it. Each proxy appends the peer it saw to
 * `X-Forwarded-For`, so the entries are read from the right: the last one is what the nearest
 * proxy saw, and so on, `trustedProxies` hops out. Anything further left was written by the
 * client and is never read: a client prepending made-up addresses, or sending a header of its
 * own to a proxy that appends, still gets the address its connection came from. With fewer
 * entries than trusted hops, the left-most one (what the outermost proxy saw).
 */
export function clientAddressOf(
  req: IncomingMessage,
  trustedProxies: TrustedProxies,
): string | undefined {
  if (trustedProxies > 0) {
    // Node joins repeated X-Forwarded-For headers with ", " in the order they came.
    const entries = (req.headers['x-forwarded-for'] ?? '')
      .toString()
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
    const hop = entries[Math.max(entries.length - trustedProxies, 0)];
    if (hop !== undefined) return withoutPort(hop);
  }
  return req.socket.remoteAddress;
}

/**
 * The address of an entry some proxies write with the client's port (`203.0.113.9:51234`,
 * `[2001:db8::1]:51234`): otherwise each of a client's connections would be a new address.
 */
function withoutPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const ipv4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return ipv4 ? ipv4[1]! : entry;
}
