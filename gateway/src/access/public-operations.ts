import { AppError, toGraphQLError } from '@platform/errors';
import type { Identity } from '@platform/tokens';
import { fragmentsOf } from '../operation-document';
import { outageOf, unavailable } from '../outage.plugin';
import {
  Kind,
  OperationTypeNode,
  parse,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** What the gateway found wrong with the Authorization header it was sent, if anything. */
export interface TokenCheck {
  authorization?: string | undefined;
  /** Set when a token was presented and refused (invalid, expired, ended). */
  tokenRefusal?: AppError | undefined;
  /**
   * Set when a token was presented but could not be checked (SERVICE_UNAVAILABLE): Redis,
   * which says whether its session ended, or the auth service, which publishes the keys, is
   * down. Such a token is never accepted.
   */
  tokenUnchecked?: AppError | undefined;
}

/**
 * Verifies the `Authorization` header the gateway was sent with `verify` (a TokenVerifier's
 * `verifyHeader`, or `genuineHeader` when the session is checked later): the caller's identity
 * (null when anonymous), or why the token was refused (the client's fault: `tokenRefusal`), or
 * that it could not be checked for a dependency outage (`tokenUnchecked`). Anything else is a
 * fault of ours, thrown (INTERNAL_SERVER_ERROR).
 */
export async function checkAccessToken(
  verify: (authorization: string | undefined) => Promise<Identity | null>,
  authorization: string | undefined,
): Promise<{ identity: Identity | null } & TokenCheck> {
  try {
    return { identity: await verify(authorization), authorization };
  } catch (error) {
    if (error instanceof AppError && error.code === 'UNAUTHENTICATED')
      return { identity: null, authorization, tokenRefusal: error };
    const outage = outageOf(error);
    if (outage) return { identity: null, authorization, tokenUnchecked: outage };
    throw toGraphQLError(error);
  }
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
 *
 * A token that could not be checked (Redis or the auth service down) is never accepted and
 * never called invalid: a public operation goes on anonymously as above, any other is refused
 * with SERVICE_UNAVAILABLE, HTTP 503 and Retry-After, so a client retries the same token.
 *
 * Called once the token is fully checked (operationLimitsPlugin, after the session).
 */
export function settleRefusedToken(
  context: TokenCheck,
  operation: OperationDefinitionNode,
  document: DocumentNode,
  publicFields: ReadonlySet<string>,
): void {
  const { tokenRefusal: refusal, tokenUnchecked: outage } = context;
  if (!refusal && !outage) return;
  if (isPublicOperation(operation, fragmentsOf(document), publicFields)) {
    context.authorization = undefined;
    return;
  }
  if (outage) throw unavailable(outage);
  throw toGraphQLError(refusal, { status: 401, headers: BEARER_CHALLENGE });
}

const BEARER_CHALLENGE = new Map([['www-authenticate', 'Bearer error="invalid_token"']]);
