import { GraphQLError, parse, validate, type DocumentNode, type GraphQLSchema } from 'graphql';

/**
 * Parses and validates operation texts against a schema, remembering the valid ones (the
 * `maxEntries` used last): WebSocket clients send the same few subscriptions over and over, and
 * a client sending many distinct texts pushes out only the least used, never the cache's use
 * for everyone else. A text of
 * more than `maxTokens` tokens is refused as the parser reaches that many (a long text of
 * fragments or variables would otherwise cost seconds of parsing and validation).
 */
export function createDocumentCache(
  schema: GraphQLSchema,
  options: {
    maxEntries?: number;
    maxTokens?: number;
    /** Refuses a parsed document before it is validated (what validation would cost too much). */
    beforeValidation?: (document: DocumentNode) => readonly GraphQLError[] | undefined;
  } = {},
): ((query: string) => DocumentNode | readonly GraphQLError[]) & {
  /** Whether `query` was parsed and validated before (its document is remembered). */
  has(query: string): boolean;
} {
  const { maxEntries = 1_000, maxTokens, beforeValidation } = options;
  const documents = new Map<string, DocumentNode>();
  const parseValid = (query: string): DocumentNode | readonly GraphQLError[] => {
    const cached = documents.get(query);
    if (cached) {
      // Used last now: it is the newest entry (a Map keeps insertion order).
      documents.delete(query);
      documents.set(query, cached);
      return cached;
    }
    let document: DocumentNode;
    let errors: readonly GraphQLError[];
    try {
      document = parse(query, maxTokens === undefined ? {} : { maxTokens });
      const refused = beforeValidation?.(document);
      if (refused) return refused;
      errors = validate(schema, document);
    } catch (error) {
      // A syntax error (too many tokens included), or a text nested so deep the parser or a
      // rule ran out of stack: the client's fault, with the contract's code.
      return [
        error instanceof GraphQLError
          ? new GraphQLError(error.message, {
              nodes: error.nodes,
              source: error.source,
              positions: error.positions,
              extensions: { code: 'BAD_USER_INPUT' },
            })
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
    if (documents.size >= maxEntries) documents.delete(documents.keys().next().value!);
    documents.set(query, document);
    return document;
  };
  return Object.assign(parseValid, { has: (query: string) => documents.has(query) });
}
