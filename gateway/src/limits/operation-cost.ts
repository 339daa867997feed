import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLArgument,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
  visit,
} from 'graphql';
import { fragmentsOf } from '../operation-document';

/** What an operation would ask of the subgraphs, measured on its document before planning. */
export interface OperationCost {
  /**
   * Fields on the longest path from the root to a leaf. A connection's own plumbing (the
   * `edges`/`nodes` list under a paged field and `node` under `edges`) adds no level.
   */
  depth: number;
  /** Field selections, aliases included, with every fragment counted once per use. */
  fields: number;
  /** Root field selections (`__typename` excluded): each is a resolver call of a subgraph. */
  rootFields: number;
  /**
   * Objects the operation may return (GitHub's node count): every paged field adds its page
   * size (`first`/`last`) times the sizes of the lists above it, every other list of objects
   * its estimated length times the same, and every other field below the root given arguments
   * one, times the same (it is resolved on its own, alias by alias).
   */
  nodes: number;
}

/** The limits every operation is held to; see docs/security.md, "Operation limits". */
export interface OperationLimits {
  /** Deepest path allowed (see `OperationCost.depth`). */
  maxDepth: number;
  /** Field selections allowed, aliases and fragment uses included. */
  maxFields: number;
  /** Root field selections allowed. */
  maxRootFields: number;
  /** Node count allowed (see `OperationCost.nodes`). */
  maxNodes: number;
  /** Length assumed for a list of objects that has no `first`/`last` argument. */
  listSize: number;
  /** Page size assumed for a paged field called without `first`/`last` and without a default. */
  pageSize: number;
}

/** The subgraphs refuse `first` above this; it is the page size when nothing else says. */
export const MAX_PAGE_SIZE = 100;

/** The documented defaults (docs/security.md), which QUERY_* variables override. */
export const DEFAULT_OPERATION_LIMITS: OperationLimits = {
  maxDepth: 12,
  maxFields: 500,
  maxRootFields: 20,
  maxNodes: 10_000,
  listSize: 10,
  pageSize: MAX_PAGE_SIZE,
};

/**
 * Brackets (`{`, `[`, `(`) an operation's text may hold open at once: far more than the depth
 * limit and the subgraphs' 32-level JSON arguments need, far fewer than the few thousand that
 * exhaust graphql-js's recursive parser (a stack overflow: a server error for a client's fault).
 */
export const MAX_TEXT_NESTING = 128;

/**
 * Tokens an operation's text may hold: the parser stops there (a syntax error, BAD_USER_INPUT).
 * Far more than an operation within the field limits needs (Apollo Router's default is the
 * same); without it a text of 1 MiB (the body limit) made of fragments, variables or directives
 * took seconds to parse and validate, an anonymous caller's way to stall the gateway.
 */
export const MAX_DOCUMENT_TOKENS = 15_000;

/**
 * The deepest bracket nesting of an operation's text, strings, block strings and comments
 * skipped; measured before the text is parsed.
 */
export function textNesting(text: string): number {
  let open = 0;
  let deepest = 0;
  for (let at = 0; at < text.length; at++) {
    const char = text[at];
    if (char === '{' || char === '[' || char === '(') {
      if (++open > deepest) deepest = open;
    } else if (char === '}' || char === ']' || char === ')') {
      open--;
    } else if (char === '#') {
      // A comment, to the end of its line.
      while (at < text.length && text[at] !== '\n' && text[at] !== '\r') at++;
    } else if (char === '"') {
      if (text.startsWith('"""', at)) {
        // A block string, to the next """ not escaped as \""".
        at += 3;
        while (at < text.length && !text.startsWith('"""', at))
          at += text.startsWith('\\"""', at) ? 4 : 1;
        at += 2;
      } else {
        // A string, to the next quote not escaped, or the end of its line.
        for (at++; at < text.length && text[at] !== '"' && text[at] !== '\n'; at++)
          if (text[at] === '\\') at++;
      }
    }
  }
  return deepest;
}

/** The NESTING limit a text exceeds, if it does (a text shorter than the limit cannot). */
export function excessNesting(text: string): LimitExceeded | undefined {
  if (text.length <= MAX_TEXT_NESTING) return undefined;
  const measured = textNesting(text);
  return measured > MAX_TEXT_NESTING
    ? { reason: 'NESTING', limit: MAX_TEXT_NESTING, measured }
    : undefined;
}

/**
 * Fragment spreads (`...name`) a document may hold. graphql-js's validation compares what
 * spreads select pairwise (OverlappingFieldsCanBeMerged), in time growing with their square and
 * in recursion as deep as they chain: 300 spreads cost about 200 ms of the gateway's CPU, and
 * 200 spreads in a cycle of 100 fragments exhausted its stack (a server error for a client's
 * fault). A page's query spreads a few dozen fragments.
 */
export const MAX_FRAGMENT_SPREADS = 100;

/** The FRAGMENTS limit a parsed document exceeds, if it does; counted before validation. */
export function excessFragments(document: DocumentNode): LimitExceeded | undefined {
  let measured = 0;
  visit(document, {
    FragmentSpread() {
      measured++;
    },
  });
  return measured > MAX_FRAGMENT_SPREADS
    ? { reason: 'FRAGMENTS', limit: MAX_FRAGMENT_SPREADS, measured }
    : undefined;
}

/** Which limit an operation exceeded: `extensions.reason` of QUERY_TOO_COMPLEX. */
export type LimitReason = 'NESTING' | 'FRAGMENTS' | 'DEPTH' | 'FIELDS' | 'ROOT_FIELDS' | 'NODES';

export interface LimitExceeded {
  reason: LimitReason;
  limit: number;
  measured: number;
}

interface Summary {
  depth: number;
  fields: number;
  /** Fields directly in this selection set (through fragments): the root fields at the top. */
  width: number;
  /** Nodes for one instance of the parent: scaled by the caller's multiplier. */
  nodes: number;
}

/**
 * Where a selection set sits in a connection: directly under a paged field that returns one
 * object (`page` = its page size, which its `edges`/`nodes` lists take), or directly under
 * such a list (where `node` adds no level).
 */
type Plumbing = { kind: 'connection'; page: number } | { kind: 'edge' } | undefined;

const EMPTY: Summary = { depth: 0, fields: 0, width: 0, nodes: 0 };
const PAGE_ARGUMENTS = ['first', 'last'];

/** What GraphQL's `Int` holds: whole numbers of 32 bits. */
const isGraphQLInt = (value: number) =>
  Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;

/**
 * Measures one operation of a validated document against the (API) schema. Fragments are
 * measured once per place they can appear and reused, so a document that nests fragment
 * spreads costs linear time however large its expansion (which the counts still reflect).
 * `@skip`/`@include` are ignored: everything selected counts.
 */
export function measureOperation(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode,
  fragments: Readonly<Record<string, FragmentDefinitionNode>>,
  variables: Readonly<Record<string, unknown>>,
  sizes: Pick<OperationLimits, 'listSize' | 'pageSize'>,
): OperationCost {
  const root = schema.getRootType(operation.operation);
  if (!root) return { depth: 0, fields: 0, rootFields: 0, nodes: 0 };
  const variableDefaults = new Map(
    (operation.variableDefinitions ?? []).map((definition) => [
      definition.variable.name.value,
      definition.defaultValue,
    ]),
  );
  const memo = new Map<string, Summary>();
  const visiting = new Set<string>();

  /**
   * An argument's number. A variable's value an `Int` argument cannot take (a fraction, or
   * beyond 32 bits) is not a size: the gateway refuses it (BAD_USER_INPUT) once the operation
   * is admitted, before any subgraph is asked.
   */
  function numberOf(value: ValueNode | undefined, isInt: boolean): number | undefined {
    if (!value) return undefined;
    if (value.kind === Kind.INT) return Number(value.value);
    if (value.kind === Kind.VARIABLE) {
      const given = variables[value.name.value];
      if (typeof given === 'number' && Number.isFinite(given))
        return isInt && !isGraphQLInt(given) ? undefined : given;
      if (given === undefined) return numberOf(variableDefaults.get(value.name.value), isInt);
    }
    return undefined;
  }

  /** The page size a paged field asks for, or undefined when it is not paged. */
  function pageSizeOf(field: FieldNode, args: readonly GraphQLArgument[]): number | undefined {
    const paging = args.filter((arg) => PAGE_ARGUMENTS.includes(arg.name));
    if (paging.length === 0) return undefined;
    let requested: number | undefined;
    for (const arg of paging) {
      const given = numberOf(
        field.arguments?.find((a) => a.name.value === arg.name)?.value,
        getNamedType(arg.type).name === 'Int',
      );
      const size = given ?? (typeof arg.defaultValue === 'number' ? arg.defaultValue : undefined);
      if (size !== undefined) requested = Math.max(requested ?? 0, size);
    }
    return Math.max(0, requested ?? sizes.pageSize);
  }

  function measureField(
    field: FieldNode,
    parent: GraphQLCompositeType,
    plumbing: Plumbing,
  ): Summary {
    const name = field.name.value;
    // Introspection is answered by the gateway from its schema, without a subgraph.
    if (name.startsWith('__')) return { depth: 1, fields: 1, width: 1, nodes: 0 };
    const definition =
      isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
    if (!definition) return { depth: 1, fields: 1, width: 1, nodes: 0 };
    const type = getNamedType(definition.type);
    const isList = isListType(getNullableType(definition.type));
    const page = pageSizeOf(field, definition.args);

    let here = 0;
    let multiplier = 1;
    let level = 1;
    let inner: Plumbing;
    if (page !== undefined) {
      here = page;
      if (isList) multiplier = page;
      else inner = { kind: 'connection', page };
    } else if (isList && isCompositeType(type)) {
      if (plumbing?.kind === 'connection') {
        // The connection's `edges`/`nodes`: its page, already counted at the paged field.
        multiplier = plumbing.page;
        level = 0;
        inner = { kind: 'edge' };
      } else {
        here = sizes.listSize;
        multiplier = sizes.listSize;
      }
    } else if (plumbing?.kind === 'edge' && name === 'node') {
      level = 0;
    } else if (parent !== root && field.arguments?.length) {
      // A field below the root given arguments is resolved on its own for each alias
      // (`permissions(scope:)` once per scope): one node each, even when it returns scalars,
      // so that aliases cannot multiply the work behind one request for nothing. (Root fields
      // are counted, and limited, as root fields.)
      here = 1;
    }
    const below =
      field.selectionSet && isCompositeType(type)
        ? measureSelections(field.selectionSet, type, inner)
        : EMPTY;
    return {
      depth: level + below.depth,
      fields: 1 + below.fields,
      width: 1,
      nodes: here + multiplier * below.nodes,
    };
  }

  function measureFragment(fragment: FragmentDefinitionNode, plumbing: Plumbing): Summary {
    const name = fragment.name.value;
    const key = `${name}\n${plumbing?.kind ?? ''}\n${plumbing?.kind === 'connection' ? plumbing.page : ''}`;
    const known = memo.get(key);
    if (known) return known;
    const type = schema.getType(fragment.typeCondition.name.value);
    // Validation has refused cycles and unknown types; this only keeps a bad input finite.
    if (visiting.has(name) || !type || !isCompositeType(type)) return EMPTY;
    visiting.add(name);
    const summary = measureSelections(fragment.selectionSet, type, plumbing);
    visiting.delete(name);
    memo.set(key, summary);
    return summary;
  }

  function measureSelections(
    selectionSet: SelectionSetNode,
    parent: GraphQLCompositeType,
    plumbing: Plumbing,
  ): Summary {
    const total = { depth: 0, fields: 0, width: 0, nodes: 0 };
    for (const selection of selectionSet.selections) {
      let part: Summary;
      if (selection.kind === Kind.FIELD) {
        part = measureField(selection, parent, plumbing);
        if (selection.name.value === '__typename') part = { ...part, width: 0 };
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition
          ? schema.getType(selection.typeCondition.name.value)
          : parent;
        part =
          condition && isCompositeType(condition)
            ? measureSelections(selection.selectionSet, condition, plumbing)
            : EMPTY;
      } else {
        const fragment = fragments[selection.name.value];
        part = fragment ? measureFragment(fragment, plumbing) : EMPTY;
      }
      total.depth = Math.max(total.depth, part.depth);
      total.fields += part.fields;
      total.width += part.width;
      total.nodes += part.nodes;
    }
    return total;
  }

  const summary = measureSelections(operation.selectionSet, root, undefined);
  return {
    depth: summary.depth,
    fields: summary.fields,
    rootFields: summary.width,
    nodes: summary.nodes,
  };
}

/** The first limit the operation exceeds, in the order depth, fields, root fields, nodes. */
export function exceededLimit(
  cost: OperationCost,
  limits: OperationLimits,
): LimitExceeded | undefined {
  const checks: [LimitReason, number, number][] = [
    ['DEPTH', cost.depth, limits.maxDepth],
    ['FIELDS', cost.fields, limits.maxFields],
    ['ROOT_FIELDS', cost.rootFields, limits.maxRootFields],
    ['NODES', cost.nodes, limits.maxNodes],
  ];
  for (const [reason, measured, limit] of checks)
    if (measured > limit) return { reason, limit, measured };
  return undefined;
}

const DESCRIPTIONS: Record<LimitReason, string> = {
  NESTING: 'Bracket nesting of the operation text',
  FRAGMENTS: 'Number of fragment spreads in the document',
  DEPTH: 'Query depth',
  FIELDS: 'Number of fields (aliases and fragment uses included)',
  ROOT_FIELDS: 'Number of root fields',
  NODES: 'Estimated number of objects (list sizes multiplied down the tree)',
};

/**
 * QUERY_TOO_COMPLEX naming the limit, its value and the measured value; answered with HTTP
 * 400 when `http` is set (over WebSocket there is no HTTP status to give).
 */
export function queryTooComplex(exceeded: LimitExceeded, http = true): GraphQLError {
  const { reason, limit, measured } = exceeded;
  const shown = Number.isFinite(measured) ? measured : Number.MAX_VALUE;
  return new GraphQLError(
    `${DESCRIPTIONS[reason]} is ${shown.toLocaleString('en-US')}, above the limit of ${limit.toLocaleString('en-US')}`,
    {
      extensions: {
        code: 'QUERY_TOO_COMPLEX',
        reason,
        limit,
        measured: shown,
        ...(http ? { http: { status: 400 } } : {}),
      },
    },
  );
}

/** Measures an operation of a validated document and tells which limit it exceeds, if any. */
export function checkOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: OperationLimits,
): { cost: OperationCost; exceeded: LimitExceeded | undefined } {
  const cost = measureOperation(schema, operation, fragmentsOf(document), variables ?? {}, limits);
  return { cost, exceeded: exceededLimit(cost, limits) };
}
