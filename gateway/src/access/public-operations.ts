import type { ApolloServerPlugin } from '@apollo/server';
import { AppError, toGraphQLError } from '@platform/errors';
import { fragmentsOf } from '../operation-document';
import {
  Kind,
  OperationTypeNode,
  parse,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** What the gateway found wrong with the Authorization header it was sent, if anything. */
export interface TokenCheck {
  authorization?: string | undefined;
  /** Set when a token was presented and refused (invalid, expired, ended). */
  tokenRefusal?: AppError | undefined;
}

/**
 * The root fields a subgraph marked `@public` in its schema (sign-in, refresh, password
 * reset, ...), read from the composed supergraph: `Mutation.login`, ...
 */
export function publicRootFields(supergraphSdl: string): Set<string> {
  const fields = new Set<string>();
  for (const definition of parse(supergraphSdl).definitions) {
    if (
      (definition.kind !== Kind.OBJECT_TYPE_DEFINITION &&
        definition.kind !== Kind.OBJECT_TYPE_EXTENSION) ||
      !['Query', 'Mutation', 'Subscription'].includes(definition.name.value)
    )
      continue;
    for (const field of definition.fields ?? []) {
      if (field.directives?.some((directive) => directive.name.value === 'public'))
        fields.add(`${definition.name.value}.${field.name.value}`);
    }
  }
  return fields;
}

function rootFieldNames(
  selectionSet: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
  seen = new Set<string>(),
): string[] {
  return selectionSet.selections.flatMap((selection) => {
    if (selection.kind === Kind.FIELD) return [selection.name.value];
    if (selection.kind === Kind.INLINE_FRAGMENT)
      return rootFieldNames(selection.selectionSet, fragments, seen);
    const name = selection.name.value;
    const fragment = fragments[name];
    if (!fragment || seen.has(name)) return [];
    seen.add(name);
    return rootFieldNames(fragment.selectionSet, fragments, seen);
  });
}

/** Whether every root field of the operation works without a valid token. */
export function isPublicOperation(
  operation: OperationDefinitionNode,
  fragments: Record<string, FragmentDefinitionNode>,
  publicFields: ReadonlySet<string>,
): boolean {
  const type =
    operation.operation === OperationTypeNode.MUTATION
      ? 'Mutation'
      : operation.operation === OperationTypeNode.SUBSCRIPTION
        ? 'Subscription'
        : 'Query';
  return rootFieldNames(operation.selectionSet, fragments).every(
    (field) => field === '__typename' || publicFields.has(`${type}.${field}`),
  );
}

/**
 * A refused access token is the client's fault, never a server error: a public operation
 * (signing in again, refreshing) goes on anonymously, without the stale header; any other
 * operation is refused before planning with UNAUTHENTICATED, HTTP 401 and
 * `extensions.reason` (`TOKEN_INVALID`, `TOKEN_EXPIRED` or `SESSION_ENDED`), so a client knows
 * to refresh.
 */
export function refusedTokenPlugin<TContext extends TokenCheck>(
  publicFields: ReadonlySet<string>,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart({ contextValue }) {
      if (!contextValue.tokenRefusal) return;
      const refusal = contextValue.tokenRefusal;
      return {
        async didResolveOperation({ operation, document }) {
          if (operation && isPublicOperation(operation, fragmentsOf(document), publicFields)) {
            contextValue.authorization = undefined;
            return;
          }
          throw toGraphQLError(refusal, { status: 401, headers: BEARER_CHALLENGE });
        },
      };
    },
  };
}

const BEARER_CHALLENGE = new Map([['www-authenticate', 'Bearer error="invalid_token"']]);

/** The refusal when the token is the client's fault; anything else (a server fault) rethrown. */
export function asTokenRefusal(error: unknown): AppError {
  if (error instanceof AppError && error.code === 'UNAUTHENTICATED') return error;
  throw error;
}
