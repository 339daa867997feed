import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';
import type { TokenCheck } from './access/public-operations';
import { subgraphFetchRecorder } from './gateway.metrics';

export interface GatewayContext extends TokenCheck {
  /** The caller's Authorization header, forwarded only after the gateway verified it. */
  authorization?: string | undefined;
  correlationId: string;
  /** The verified caller's id (undefined when anonymous), for per-user limits. */
  userId?: string | undefined;
  /** The end user's client, for the sessions list. */
  userAgent?: string | undefined;
  /** The end user's address, for rate limits. */
  clientAddress?: string | undefined;
}

/**
 * Forwards the caller's token (subgraphs verify it again) and the correlation id, and presents
 * the internal credential: subgraphs serve nobody else.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(
    options: ConstructorParameters<typeof RemoteGraphQLDataSource<GatewayContext>>[0] & {
      internalToken: string;
      /** The subgraph's name, for the fetch metrics (`gateway_subgraph_*`). */
      name?: string;
    },
  ) {
    super(options);
    this.internalToken = options.internalToken;
    this.metrics = subgraphFetchRecorder(options.name ?? 'unknown');
  }

  private readonly internalToken: string;
  private readonly metrics: ReturnType<typeof subgraphFetchRecorder>;

  /** Every fetch counted and timed, with the codes of the errors it answered or failed with. */
  override async process(
    options: GraphQLDataSourceProcessOptions<GatewayContext>,
  ): ReturnType<RemoteGraphQLDataSource<GatewayContext>['process']> {
    const started = performance.now();
    try {
      const response = await super.process(options);
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

  override willSendRequest({
    request,
    context,
  }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    // The gateway's own requests (e.g. at load) come without a request context.
    const { authorization, correlationId, userAgent, clientAddress } =
      context as Partial<GatewayContext>;
    request.http?.headers.set(INTERNAL_TOKEN_HEADER, this.internalToken);
    if (authorization) request.http?.headers.set('authorization', authorization);
    if (correlationId) request.http?.headers.set('x-correlation-id', correlationId);
    if (userAgent) request.http?.headers.set('user-agent', userAgent);
    if (clientAddress) request.http?.headers.set('x-client-address', clientAddress);
  }
}
