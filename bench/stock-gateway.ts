// Stock @apollo/gateway for `npm run bench:gateway`: Apollo's documented minimal gateway
// (ApolloServer + ApolloGateway on a supergraph SDL, startStandaloneServer, a
// RemoteGraphQLDataSource with its default fetcher) with the product's installed
// @apollo/gateway and @apollo/server, forwarding what the subgraphs require: the caller's
// `authorization` and the platform's internal credential. Nothing else of the project's
// gateway (no token check, limits, budget or plugins). Started by the bench as its own
// process: BENCH_SUPERGRAPH_FILE, BENCH_PORT, BENCH_INTERNAL_TOKEN.
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { INTERNAL_TOKEN_HEADER } from '@platform/grpc';

interface Context {
  authorization?: string | undefined;
}

const supergraphSdl = readFileSync(process.env['BENCH_SUPERGRAPH_FILE'] ?? '', 'utf8');
const internalToken = process.env['BENCH_INTERNAL_TOKEN'] ?? '';
const port = Number(process.env['BENCH_PORT']);

const gateway = new ApolloGateway({
  supergraphSdl,
  buildService: ({ url }) =>
    new RemoteGraphQLDataSource<Context>({
      url,
      willSendRequest({ request, context }) {
        // The gateway's own requests (none here: the supergraph is static) have no context.
        const { authorization } = context as Partial<Context>;
        request.http?.headers.set(INTERNAL_TOKEN_HEADER, internalToken);
        if (authorization) request.http?.headers.set('authorization', authorization);
      },
    }),
});
const server = new ApolloServer<Context>({ gateway });
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
process.stdout.write(`stock gateway ready at ${url}\n`);
