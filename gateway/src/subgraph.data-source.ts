import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { TokenCheck } from './access/public-operations';

export interface GatewayContext extends TokenCheck {
  /** The caller's Authorization header, forwarded only after the gateway verified it. */
  authorization?: string | undefined;
  correlationId: string;
  /** The end user's client, for the sessions list. */
  userAgent?: string | undefined;
  /** The end user's address, for rate limits. */
  clientAddress?: string | undefined;
}

/** Forwards the caller's token (subgraphs verify it again) and the correlation id. */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  override willSendRequest({
    request,
    context,
  }: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    // The gateway's own requests (e.g. at load) come without a request context.
    const { authorization, correlationId, userAgent, clientAddress } =
      context as Partial<GatewayContext>;
    if (authorization) request.http?.headers.set('authorization', authorization);
    if (correlationId) request.http?.headers.set('x-correlation-id', correlationId);
    if (userAgent) request.http?.headers.set('user-agent', userAgent);
    if (clientAddress) request.http?.headers.set('x-client-address', clientAddress);
  }
}
