import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { BREAK, Kind, visit, type DocumentNode } from 'graphql';
import { AppError, toGraphQLError } from '@platform/errors';
import { findIllFormedText } from '@platform/validation';

/**
 * Lists and objects a variable's value may nest: well above the subgraphs' 32-level JSON
 * arguments (which answer a deeper one with BAD_USER_INPUT themselves), well below what would
 * exhaust the gateway's call stack when the value is serialised for a subgraph.
 */
export const MAX_VARIABLE_DEPTH = 64;

/** What is wrong with an operation's input, and where (`query`, or a variable's path). */
export interface InputProblem {
  where: string;
  problem: string;
}

const ILL_FORMED = 'must not contain NUL characters or unpaired surrogates';
const NOT_FINITE = 'must be a finite number';

/**
 * The first string or number literal of a document that no field can take: a string holding a
 * NUL or an unpaired surrogate once its escapes are decoded (`"\u0000"`), a number too large to
 * be one (`1e400`). Remembered per document: Apollo hands the same parsed document to every
 * request with the same text.
 */
const literalProblems = new WeakMap<DocumentNode, InputProblem | null>();
export function literalProblemOf(document: DocumentNode): InputProblem | undefined {
  const known = literalProblems.get(document);
  if (known !== undefined) return known ?? undefined;
  let found: InputProblem | null = null;
  visit(document, {
    StringValue(node) {
      if (findIllFormedText(node.value)) found = { where: 'query', problem: ILL_FORMED };
      return found ? BREAK : undefined;
    },
    [Kind.FLOAT](node) {
      if (!Number.isFinite(Number(node.value))) found = { where: 'query', problem: NOT_FINITE };
      return found ? BREAK : undefined;
    },
    [Kind.INT](node) {
      if (!Number.isFinite(Number(node.value))) found = { where: 'query', problem: NOT_FINITE };
      return found ? BREAK : undefined;
    },
  });
  literalProblems.set(document, found);
  return found ?? undefined;
}

/**
 * The first value among the variables no field can take: nested deeper than
 * MAX_VARIABLE_DEPTH, a number JSON cannot carry (`1e400` parses as Infinity), or text holding
 * a NUL or an unpaired surrogate. Walked with an explicit stack, whatever the nesting.
 */
export function variableProblemOf(
  variables: Readonly<Record<string, unknown>>,
): InputProblem | undefined {
  const pending: [unknown, string, number][] = Object.entries(variables)
    .reverse()
    .map(([name, value]) => [value, name, 0]);
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, at, depth] = next;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return { where: at, problem: NOT_FINITE };
    } else if (value && typeof value === 'object') {
      if (depth >= MAX_VARIABLE_DEPTH)
        return { where: at, problem: `must not nest more than ${MAX_VARIABLE_DEPTH} levels` };
      const entries = Array.isArray(value)
        ? value.map((item, index): [string, unknown] => [`[${index}]`, item])
        : Object.entries(value).map(([key, item]): [string, unknown] => [`.${key}`, item]);
      for (let index = entries.length - 1; index >= 0; index--) {
        const [step, item] = entries[index] as [string, unknown];
        pending.push([item, at + step, depth + 1]);
      }
    }
  }
  const illFormed = findIllFormedText(variables);
  return illFormed ? { where: illFormed, problem: ILL_FORMED } : undefined;
}

/**
 * Refuses, before planning, an operation whose literals or variables hold what no field takes
 * and what would fail deep inside a subgraph or a service instead: a NUL character or an
 * unpaired surrogate (PostgreSQL cannot store them), a number beyond what a double holds, a
 * variable nested deeper than MAX_VARIABLE_DEPTH. BAD_USER_INPUT naming where, HTTP 400.
 */
export function wellFormedTextPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document }) {
          const found =
            (request.variables && variableProblemOf(request.variables)) ||
            literalProblemOf(document);
          if (!found) return;
          throw toGraphQLError(AppError.badInput(found.where, found.problem), { status: 400 });
        },
      };
    },
  };
}
