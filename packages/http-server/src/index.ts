export {
  createHttpServer,
  readJsonBody,
  sendJson,
  type HttpServer,
  type HttpServerOptions,
  type Route,
} from './http-server';
export { createGraphQLHandler } from './graphql.handler';
export { requestLogPlugin } from './request-log.plugin';
export {
  graphqlMetricsPlugin,
  MAX_OPERATION_NAMES,
  recordWebSocketOperation,
} from './metrics.plugin';
export { createDocumentCache } from './document-cache';
export { serveGraphqlWs, textOf, type SocketExtra } from './graphql-ws.transport';
