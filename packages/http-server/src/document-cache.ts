import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';

/**
 * Parses and validates operation texts against a schema, remembering the valid ones (up to
 * `maxEntries`): WebSocket clients send the same few subscriptions over and over.
 */
export function createDocumentCache(
  schema: GraphQLSchema,
  maxEntries = 1_000,
): (query: string) => DocumentNode | readonly GraphQLError[] {
  const documents = new Map<string, DocumentNode>();
  return (query) => {
    const cached = documents.get(query);
    if (cached) return cached;
    let document: DocumentNode;
    let errors: readonly GraphQLError[];
    try {
      document = parse(query);
      errors = validate(schema, document);
    } catch (error) {
      // A syntax error, or a text nested so deep the parser or a rule ran out of stack.
      return [
        error instanceof GraphQLError
          ? error
          : new GraphQLError('Invalid query', { extensions: { code: 'BAD_USER_INPUT' } }),
      ];
    }
    if (errors.length > 0)
      return errors.map(
        (error) =>
          new GraphQLError(error.message, {
            nodes: error.nodes,
            extensions: { code: 'BAD_USER_INPUT' },
          }),
      );
    if (documents.size < maxEntries) documents.set(query, document);
    return document;
  };
}
