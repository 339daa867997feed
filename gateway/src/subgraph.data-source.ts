import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';

export interface GatewayContext {
  /** The caller's Authorization header, forwarded only after the gateway verified it. */
  authorization?: string | undefined;
  correlationId: string;
}

/** Forwards the caller's token (subgraphs verify it again) and the correlation id. */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    if (!('correlationId' in context)) return; // the gateway's own health checks
    if (context.authorization) request.http?.headers.set('authorization', context.authorization);
    request.http?.headers.set('x-correlation-id', context.correlationId);
  }
}
