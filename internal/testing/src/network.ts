import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  port: number;
  /** Drops every connection and refuses new ones: the far side looks unreachable. */
  cut(): void;
  /** Accepts and forwards connections again. */
  restore(): void;
  /**
   * Stops (true) or resumes (false) forwarding bytes on the open connections, closing nothing:
   * a black-holed network, where only a timeout can tell.
   */
  silence(on: boolean): void;
  /**
   * From now on forwards new connections to `next`, dropping the connections to the old target
   * (unless `keepOpen`): what a failover does to the clients of an address (they reconnect, and
   * reach another server). With `keepOpen`, a connection already open stays on the old server
   * until it drops for another reason (as after a DNS switch).
   */
  retarget(next: { host: string; port: number }, options?: { keepOpen?: boolean }): void;
  close(): Promise<void>;
}

/**
 * `url` (scheme, credentials, path kept) pointed at a local `port` instead, such as a
 * {@link TcpProxy}'s in front of the server `url` names.
 */
export function urlThrough(url: string | URL, port: number): string {
  const through = new URL(url);
  through.hostname = '127.0.0.1';
  through.port = String(port);
  return through.toString();
}

/** A TCP proxy to `target` that a test can cut and restore, to simulate a network outage. */
export async function createTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  let current = target;
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(current.port, current.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    retarget(next, options) {
      current = next;
      if (!options?.keepOpen) for (const socket of sockets) socket.destroy();
    },
    restore() {
      open = true;
    },
    silence(on) {
      for (const socket of sockets) {
        if (on) socket.pause();
        else socket.resume();
      }
    },
    close() {
      open = false;
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
