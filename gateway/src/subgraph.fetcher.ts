import type { RemoteGraphQLDataSource } from '@apollo/gateway';
import { Pool } from 'undici';

type Fetcher = RemoteGraphQLDataSource['fetcher'];
type FetcherResponse = Awaited<ReturnType<Fetcher>>;

/** A subgraph's answer as it came: status, headers and the body's text. */
export interface SubgraphReply {
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface SubgraphClient {
  /**
   * POSTs `body` to the subgraph at `url` (one URL or a list of instances, see
   * `subgraphInstances`). The data source's path: no WHATWG `Request`/`Headers` objects.
   */
  post(url: string, headers: Record<string, string>, body: string): Promise<SubgraphReply>;
  close(): Promise<void>;
}

/**
 * The instances a subgraph URL names: one URL, or several separated by commas (replicas of
 * the subgraph behind no load balancer, e.g. `http://10.0.0.1:4001/graphql,http://10.0.0.2:4001/graphql`).
 */
export function subgraphInstances(url: string): string[] {
  return url
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
}

/** How long an instance that refused a connection is skipped (while another is left). */
const REFUSED_BACKOFF_MS = 2_000;

/**
 * A failure to connect: nothing was sent, so the request (even a mutation) may go to the
 * next instance. A failure after the request left (a reset, a timeout) is never retried.
 */
function neverSent(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/**
 * The gateway's HTTP client for subgraph calls: undici's request API on a keep-alive pool.
 * Apollo's default (make-fetch-happen, with its HTTP-cache layer) and even WHATWG fetch cost
 * noticeably more CPU per call, and subgraph calls are most of what a gateway does.
 *
 * A URL that lists several instances (`subgraphInstances`) is served round-robin; a request
 * whose connection an instance refuses goes to the next (nothing was sent), and that
 * instance is skipped for a moment, so losing one instance costs no request.
 */
export function createSubgraphFetcher(options: { timeoutMs: number }): SubgraphClient {
  /**
   * One keep-alive pool per instance, its URL parsed once: a call goes straight to it, with
   * no URL parsing and no lookup by origin in an Agent (measurable at thousands of calls/s).
   */
  const instances = new Map<string, { pool: Pool; path: string }>();
  const pools = new Map<string, { urls: string[]; next: number }>();
  // When each instance that refused a connection may be tried again.
  const refusedUntil = new Map<string, number>();

  interface Sent {
    method: 'POST';
    headers: Record<string, string>;
    body: string;
  }

  function instanceOf(url: string) {
    let instance = instances.get(url);
    if (!instance) {
      const { origin, pathname, search } = new URL(url);
      instance = {
        pool: new Pool(origin, {
          keepAliveTimeout: 60_000,
          headersTimeout: options.timeoutMs,
          bodyTimeout: options.timeoutMs,
        }),
        path: pathname + search,
      };
      instances.set(url, instance);
    }
    return instance;
  }

  /**
   * One request on the instance's pool, its answer gathered by a handler of our own: undici's
   * `request` API would wrap every call in an AsyncResource and hand the body over as a
   * Readable stream only to be read whole again (`body.text()`), a measurable part of the
   * gateway's CPU per fetch. Timeouts and aborts are the pool's, as with `request`.
   */
  function send(url: string, init: Sent): Promise<SubgraphReply> {
    const { pool, path } = instanceOf(url);
    return new Promise((resolve, reject) => {
      let status = 0;
      let headers: SubgraphReply['headers'] = {};
      const chunks: Buffer[] = [];
      pool.dispatch(
        { path, ...init },
        {
          // Its presence is what tells undici this handler speaks the current API.
          onRequestStart() {},
          // After any 1xx (103 Early Hints), again with the final answer: the last one counts.
          onResponseStart(_controller, statusCode, responseHeaders) {
            status = statusCode;
            headers = responseHeaders;
          },
          onResponseData(_controller, chunk) {
            chunks.push(chunk);
          },
          onResponseEnd() {
            // Decoded whole: a character may be split between chunks.
            const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
            resolve({ url, status, headers, text: body.toString('utf8') });
          },
          onResponseError(_controller, error) {
            reject(error);
          },
        },
      );
    });
  }

  async function dispatch(url: string, init: Sent): Promise<SubgraphReply> {
    let pool = pools.get(url);
    if (!pool) {
      pool = { urls: subgraphInstances(url), next: 0 };
      pools.set(url, pool);
    }
    const { urls } = pool;
    if (urls.length <= 1) return send(urls[0] ?? url, init);
    const start = pool.next;
    pool.next = (start + 1) % urls.length;
    const now = Date.now();
    // Round-robin order from this request's turn, instances that just refused last.
    const order = urls
      .map((_, offset) => urls[(start + offset) % urls.length] as string)
      .sort(
        (a, b) =>
          Number((refusedUntil.get(a) ?? 0) > now) - Number((refusedUntil.get(b) ?? 0) > now),
      );
    for (const [index, target] of order.entries()) {
      try {
        const response = await send(target, init);
        refusedUntil.delete(target);
        return response;
      } catch (error) {
        if (!neverSent(error) || index === order.length - 1) throw error;
        refusedUntil.set(target, Date.now() + REFUSED_BACKOFF_MS);
      }
    }
    throw new Error('unreachable: no subgraph instance tried');
  }

  return {
    post: (url, headers, body) => dispatch(url, { method: 'POST', headers, body }),
    close: async () => {
      await Promise.all([...instances.values()].map(({ pool }) => pool.close()));
    },
  };
}

/** A reply as Apollo's `FetcherResponse` (WHATWG-like), for code that expects a fetch's answer. */
export function toFetcherResponse(reply: SubgraphReply): FetcherResponse {
  const { url, status, text } = reply;
  const headers = new Headers();
  for (const [name, value] of Object.entries(reply.headers)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  const response: FetcherResponse = {
    bodyUsed: true,
    url,
    redirected: false,
    status,
    ok: status >= 200 && status < 300,
    statusText: '',
    headers,
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
    arrayBuffer: async () => new TextEncoder().encode(text).buffer,
    clone: () => toFetcherResponse(reply),
  };
  return response;
}
