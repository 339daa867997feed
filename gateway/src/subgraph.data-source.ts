import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';
import type { Identity } from '@platform/tokens';
import type { TokenCheck } from './access/public-operations';
import { subgraphFetchRecorder } from './gateway.metrics';
import { toFetcherResponse, type SubgraphClient } from './subgraph.fetcher';

type SubgraphResponse = Awaited<ReturnType<RemoteGraphQLDataSource['process']>>;

export interface GatewayContext extends TokenCheck {
  /** The caller's Authorization header, forwarded only after the gateway verified it. */
  authorization?: string | undefined;
  correlationId: string;
  /** A genuine token's identity, its session not yet checked (operationLimitsPlugin does). */
  session?: Identity | undefined;
  /** The verified caller's id (undefined when anonymous), set once the session was checked. */
  userId?: string | undefined;
  /** The end user's client, for the sessions list. */
  userAgent?: string | undefined;
  /** The end user's address, for rate limits. */
  clientAddress?: string | undefined;
}

/**
 * Forwards the caller's token (subgraphs verify it again) and the correlation id, and presents
 * the internal credential: subgraphs serve nobody else.
 *
 * A `RemoteGraphQLDataSource` whose `process` sends through the gateway's subgraph client
 * directly: the stock path builds a node-fetch `Headers` and `Request` (with a legacy URL
 * parse) and a WHATWG `Headers` for the answer on every fetch, for hooks the gateway does not
 * use (cache-control hints: the gateway computes none; `didReceiveResponse`). What is sent is
 * the same: a POST of `{ query, variables, operationName, extensions }` as JSON. A non-2xx
 * answer is the same `GraphQLError` stock makes (`errorFromResponse`: 401 UNAUTHENTICATED,
 * 403 FORBIDDEN, the status otherwise), and a failure to send is thrown as it came.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(options: {
    url: string;
    client: SubgraphClient;
    internalToken: string;
    /** The subgraph's name, for the fetch metrics (`gateway_subgraph_*`). */
    name?: string;
  }) {
    super({ url: options.url });
    this.client = options.client;
    this.internalToken = options.internalToken;
    this.metrics = subgraphFetchRecorder(options.name ?? 'unknown');
  }

  private readonly client: SubgraphClient;
  private readonly internalToken: string;
  private readonly metrics: ReturnType<typeof subgraphFetchRecorder>;

  /** Every fetch counted and timed, with the codes of the errors it answered or failed with. */
  override async process(
    options: GraphQLDataSourceProcessOptions<GatewayContext>,
  ): Promise<SubgraphResponse> {
    const started = performance.now();
    try {
      const response = await this.send(options);
      this.metrics.done(
        started,
        (response.errors ?? []).map((error) => error.extensions?.['code']),
      );
      return response;
    } catch (error) {
      const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
      this.metrics.done(started, [code ?? 'FETCH_FAILED']);
      throw error;
    }
  }

  private async send({
    request,
    context,
  }: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<SubgraphResponse> {
    const { query, variables, operationName, extensions } = request;
    if (!query) throw new Error('Missing query');
    const headers: Record<string, string> = {};
    // Headers the plan asked for (e.g. a federated trace), then ours.
    if (request.http?.headers)
      for (const [name, value] of request.http.headers) headers[name] = value;
    headers['content-type'] = 'application/json';
    headers[INTERNAL_TOKEN_HEADER] = this.internalToken;
    // The gateway's own requests (e.g. at load) come without a request context.
    const { authorization, correlationId, userAgent, clientAddress } = (context ??
      {}) as Partial<GatewayContext>;
    if (authorization) headers['authorization'] = authorization;
    if (correlationId) headers['x-correlation-id'] = correlationId;
    if (userAgent) headers['user-agent'] = userAgent;
    if (clientAddress) headers['x-client-address'] = clientAddress;

    const reply = await this.client.post(
      this.url,
      headers,
      JSON.stringify({ query, variables, operationName, extensions }),
    );
    if (reply.status < 200 || reply.status >= 300)
      throw await this.errorFromResponse(toFetcherResponse(reply));
    const contentType = reply.headers['content-type'];
    const body: unknown =
      typeof contentType === 'string' &&
      (contentType.startsWith('application/json') ||
        contentType.startsWith('application/graphql-response+json'))
        ? JSON.parse(reply.text)
        : reply.text;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new Error(`Expected JSON response body, but received: ${String(body)}`);
    return body;
  }
}
