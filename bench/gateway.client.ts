import { Agent, request } from 'undici';

// One keep-alive pool for all of a benchmark's requests: the load generator shares the
// machine with the apps it measures, so it should spend as little CPU per request as it can.
const agent = new Agent({ connections: 64, pipelining: 1 });

/** A GraphQL client for the benchmarks: posts to the gateway and returns `data` or throws. */
export function gatewayClient(gatewayUrl: string) {
  const url = `${gatewayUrl}/graphql`;
  return async function graphql<T>(query: string, variables: object, token?: string): Promise<T> {
    const response = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.body.json()) as { data?: T; errors?: unknown };
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
}
