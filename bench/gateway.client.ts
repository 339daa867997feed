/** A GraphQL client for the benchmarks: posts to the gateway and returns `data` or throws. */
export function gatewayClient(gatewayUrl: string) {
  return async function graphql<T>(query: string, variables: object, token?: string): Promise<T> {
    const response = await fetch(`${gatewayUrl}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: unknown };
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
}
