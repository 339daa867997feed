import {
  assert,
  ERRORS,
  isCompositeType,
  isListType,
  isNonNullType,
  isObjectType,
  isSubtype,
  isValidLeafValue,
  typenameFieldName,
  Variable,
  type CompositeType,
  type EnumType,
  type FieldSelection,
  type Operation,
  type ScalarType,
  type Schema,
  type Selection,
  type SelectionSet,
  type Type,
} from '@apollo/federation-internals';
import { deepMerge } from '@apollo/gateway/dist/utilities/deepMerge.js';
import type { GraphQLError } from 'graphql';

/**
 * The client's answer from what the subgraphs returned: only the fields the operation asked
 * for, under its aliases, `@skip`/`@include` applied, values checked against the API schema
 * and nulls propagated to the nearest nullable parent (with an error naming the field).
 *
 * The same rules as @apollo/gateway's `computeResponse` (its messages and paths too), compiled
 * once per operation instead of walked from the operation's objects on every request: the
 * directives, response names, field types and introspection checks are read here once, so a
 * request pays only for its data.
 */
export interface ResultShape {
  (
    input: Record<string, unknown>,
    variables: Record<string, unknown> | undefined,
    introspect: (field: FieldSelection) => unknown,
  ): { data: Record<string, unknown> | null; errors: GraphQLError[] };
  /** How many selections it was compiled from (with fragments expanded where spread). */
  readonly steps: number;
}

/** Skipped when the condition's value (a variable's or a literal) equals `skipWhen`. */
interface Condition {
  variable?: string;
  value?: boolean;
  skipWhen: boolean;
}

interface StepBase {
  conditions: Condition[] | undefined;
}
interface FieldStep extends StepBase {
  kind: 'field';
  responseName: string;
  type: Type;
  selections: Step[] | undefined;
}
interface TypenameStep extends StepBase {
  kind: 'typename';
  responseName: string;
}
interface IntrospectionStep extends StepBase {
  kind: 'introspection';
  responseName: string;
  selection: FieldSelection;
}
interface FragmentStep extends StepBase {
  kind: 'fragment';
  typeCondition: CompositeType | undefined;
  selections: Step[];
  /** Whether the type condition applies, by `__typename` (or `#` and the parent's name). */
  applies: Map<string, boolean>;
}
type Step = FieldStep | TypenameStep | IntrospectionStep | FragmentStep;

/** The value a step produced (a field's updated output), to spare an object per value. */
interface Shaping {
  schema: Schema;
  variables: Record<string, unknown>;
  errors: GraphQLError[];
  introspect: (field: FieldSelection) => unknown;
  path: (string | number)[];
  value: unknown;
  newObject: () => Record<string, unknown>;
}

const OK = 0;
const NULL_BUBBLE_UP = 1;
/** Flags of an updated value: it is null where null is not allowed / an error was recorded. */
const INVALID = 1;
const HAS_ERRORS = 2;

export function compileResultShape(operation: Operation): ResultShape {
  const schema = operation.schema();
  const skip = schema.skipDirective();
  const include = schema.includeDirective();
  let nullPrototype = false;

  function conditionsOf(selection: Selection): Condition[] | undefined {
    const conditions: Condition[] = [];
    const add = (directive: { arguments(): { if?: unknown } } | undefined, when: boolean) => {
      if (!directive) return;
      const condition: unknown = directive.arguments().if;
      if (condition instanceof Variable)
        conditions.push({ variable: condition.name, skipWhen: when });
      else conditions.push({ value: condition as boolean, skipWhen: when });
    };
    add(selection.element.appliedDirectivesOf(skip)[0], true);
    add(selection.element.appliedDirectivesOf(include)[0], false);
    return conditions.length > 0 ? conditions : undefined;
  }

  let steps = 0;
  function compile(selectionSet: SelectionSet): Step[] {
    return selectionSet.selections().map((selection): Step => {
      steps++;
      const conditions = conditionsOf(selection);
      if (selection.kind === 'FieldSelection') {
        const field = selection.element;
        const responseName = field.responseName();
        if (responseName === '__proto__') nullPrototype = true;
        if (field.definition.isSchemaIntrospectionField())
          return { kind: 'introspection', conditions, responseName, selection };
        if (field.name === typenameFieldName) return { kind: 'typename', conditions, responseName };
        return {
          kind: 'field',
          conditions,
          responseName,
          type: field.definition.type!,
          selections: selection.selectionSet ? compile(selection.selectionSet) : undefined,
        };
      }
      return {
        kind: 'fragment',
        conditions,
        typeCondition: selection.element.typeCondition,
        selections: compile(selection.selectionSet),
        applies: new Map(),
      };
    });
  }

  const root = compile(operation.selectionSet);
  const rootType = schema.schemaDefinition.rootType(operation.rootKind)!;
  const defaults = operation.collectDefaultedVariableValues();
  // Plain objects (quicker to build and to serialize than null-prototype ones), only ever read
  // through `own`: an inherited name (`constructor`, `toString`) is never taken for an answer.
  // A `__proto__` alias would set the prototype instead of a field: then none have one.
  const newObject = nullPrototype
    ? () => Object.create(null) as Record<string, unknown>
    : () => ({}) as Record<string, unknown>;

  const shape = (
    input: Record<string, unknown>,
    variables: Record<string, unknown> | undefined,
    introspect: (field: FieldSelection) => unknown,
  ) => {
    const shaping: Shaping = {
      schema,
      variables: { __proto__: null, ...defaults, ...variables },
      errors: [],
      introspect,
      path: [],
      value: undefined,
      newObject,
    };
    const data = newObject();
    const result = applySteps(root, input, data, rootType, shaping);
    return { data: result === NULL_BUBBLE_UP ? null : data, errors: shaping.errors };
  };
  return Object.assign(shape, { steps });
}

function skipped(conditions: Condition[], variables: Record<string, unknown>): boolean {
  for (const condition of conditions) {
    let value = condition.value;
    if (condition.variable !== undefined) {
      const given = variables[condition.variable];
      assert(
        typeof given === 'boolean',
        () => `Unexpected value ${String(given)} for variable $${condition.variable}`,
      );
      value = given;
    }
    if (value === condition.skipWhen) return true;
  }
  return false;
}

/** What kind of value it was, for an assertion's message: never the value (logs get it). */
function shown(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? '(a list)' : `(a ${typeof value})`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function own(object: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}

function fragmentApplies(
  step: FragmentStep,
  typename: string | undefined,
  parentType: CompositeType,
  schema: Schema,
): boolean {
  const condition = step.typeCondition;
  if (!condition) return true;
  const key = typename ?? `#${parentType.name}`;
  let applies = step.applies.get(key);
  if (applies === undefined) {
    if (typename) {
      const type = schema.type(typename);
      applies = !!type && isSubtype(condition, type);
    } else {
      applies = isSubtype(condition, parentType);
    }
    step.applies.set(key, applies);
  }
  return applies;
}

function applySteps(
  steps: Step[],
  input: Record<string, unknown>,
  output: Record<string, unknown>,
  parentType: CompositeType,
  shaping: Shaping,
): typeof OK | typeof NULL_BUBBLE_UP {
  for (const step of steps) {
    if (step.conditions && skipped(step.conditions, shaping.variables)) continue;
    switch (step.kind) {
      case 'introspection': {
        // The same response name selected twice (say, in a fragment too) is one answer with
        // the fields of both (the selections are mergeable: validation made sure).
        const earlier = own(output, step.responseName);
        const value = shaping.introspect(step.selection);
        if (earlier === undefined) output[step.responseName] = value;
        else if (isObject(earlier) && isObject(value)) deepMerge(earlier, value);
        break;
      }
      case 'typename': {
        if (own(output, step.responseName) !== undefined) break;
        let value = own(input, step.responseName) ?? null;
        if (value === null && step.responseName !== typenameFieldName)
          value = input[typenameFieldName] ?? null;
        const type =
          typeof value === 'string' ? (shaping.schema.type(value) ?? parentType) : parentType;
        if (!isObjectType(type)) return NULL_BUBBLE_UP;
        output[step.responseName] = type.name;
        break;
      }
      case 'field': {
        shaping.path.push(step.responseName);
        const flags = updateValue(
          own(output, step.responseName),
          step.type,
          own(input, step.responseName) ?? null,
          step.selections,
          parentType,
          shaping,
        );
        output[step.responseName] = shaping.value;
        shaping.path.pop();
        if (flags & INVALID) return NULL_BUBBLE_UP;
        break;
      }
      case 'fragment': {
        const typename = input[typenameFieldName];
        assert(
          !typename || typeof typename === 'string',
          () => `Got unexpected value for __typename: ${String(typename)}`,
        );
        if (fragmentApplies(step, (typename as string) || undefined, parentType, shaping.schema)) {
          const result = applySteps(
            step.selections,
            input,
            output,
            step.typeCondition ?? parentType,
            shaping,
          );
          if (result === NULL_BUBBLE_UP) return NULL_BUBBLE_UP;
        }
        break;
      }
    }
  }
  return OK;
}

function describeLast(path: (string | number)[], type: Type, parentType: CompositeType): string {
  const element = path[path.length - 1];
  assert(element !== undefined, 'Should not have been called on an empty path');
  return typeof element === 'string'
    ? `field ${parentType.toString()}.${element}`
    : `array element of type ${type.toString()} at index ${element}`;
}

/** Sets `shaping.value` to the updated output; returns INVALID / HAS_ERRORS flags. */
function updateValue(
  outputValue: unknown,
  type: Type,
  inputValue: unknown,
  selections: Step[] | undefined,
  parentType: CompositeType,
  shaping: Shaping,
): number {
  if (outputValue === null || (outputValue !== undefined && !selections)) {
    shaping.value = outputValue;
    return 0;
  }
  if (isNonNullType(type)) {
    const flags = updateValue(
      outputValue,
      type.ofType as Type,
      inputValue,
      selections,
      parentType,
      shaping,
    );
    if (shaping.value === null) {
      if (!(flags & HAS_ERRORS))
        shaping.errors.push(
          ERRORS.INVALID_GRAPHQL.err(
            `Cannot return null for non-nullable ${describeLast(shaping.path, type.ofType as Type, parentType)}.`,
            { path: Array.from(shaping.path) },
          ),
        );
      return INVALID | HAS_ERRORS;
    }
    return 0;
  }
  if (inputValue === null) {
    shaping.value = null;
    return 0;
  }
  if (isListType(type)) {
    assert(
      Array.isArray(inputValue),
      () =>
        `Invalid non-list value ${shown(inputValue)} returned by subgraph for list type ${type.toString()}`,
    );
    assert(
      outputValue === undefined || Array.isArray(outputValue),
      () =>
        `Invalid non-list value ${shown(outputValue)} returned by subgraph for list type ${type.toString()}`,
    );
    const outputs = outputValue as unknown[] | undefined;
    assert(
      outputs === undefined || outputs.length === inputValue.length,
      () =>
        `[${shown(inputValue)}].length (${inputValue.length}) !== [${shown(outputs)}].length (${outputs?.length})`,
    );
    const updated = new Array<unknown>(inputValue.length);
    let nullify = false;
    let hasErrors = false;
    for (let index = 0; index < inputValue.length; index++) {
      shaping.path.push(index);
      const flags = updateValue(
        outputs?.[index],
        type.ofType as Type,
        inputValue[index],
        selections,
        parentType,
        shaping,
      );
      shaping.path.pop();
      if (flags & INVALID) nullify = true;
      if (flags & HAS_ERRORS) hasErrors = true;
      updated[index] = shaping.value;
    }
    shaping.value = nullify ? null : updated;
    return hasErrors ? HAS_ERRORS : 0;
  }
  if (isCompositeType(type)) {
    assert(selections, () => `Invalid empty selection set for composite type ${type.toString()}`);
    assert(
      typeof inputValue === 'object',
      () =>
        `Invalid non-object value ${shown(inputValue)} returned by subgraph for composite type ${type.toString()}`,
    );
    assert(
      outputValue === undefined || typeof outputValue === 'object',
      () =>
        `Invalid non-object value ${shown(inputValue)} returned by subgraph for composite type ${type.toString()}`,
    );
    const input = inputValue as Record<string, unknown>;
    const inputTypename = input[typenameFieldName];
    assert(
      inputTypename === undefined || typeof inputTypename === 'string',
      () =>
        `Invalid non-string value ${String(inputTypename)} for __typename at ${String(shaping.path)}`,
    );
    let objectType: CompositeType = type;
    if (inputTypename) {
      const typenameType = shaping.schema.type(inputTypename);
      if (!typenameType || !isCompositeType(typenameType)) {
        shaping.errors.push(
          ERRORS.INVALID_GRAPHQL.err(
            `Invalid __typename found for object at ${describeLast(shaping.path, type, parentType)}.`,
            { path: Array.from(shaping.path) },
          ),
        );
        shaping.value = null;
        return HAS_ERRORS;
      }
      objectType = typenameType;
    }
    const output = (outputValue as Record<string, unknown> | undefined) ?? shaping.newObject();
    const result = applySteps(selections, input, output, objectType, shaping);
    shaping.value = result === NULL_BUBBLE_UP ? null : output;
    return result === NULL_BUBBLE_UP ? HAS_ERRORS : 0;
  }
  assert(
    outputValue === undefined,
    () => `Excepted output to be undefined but got ${type.toString()} for type ${type.toString()}`,
  );
  const valid = isValidLeafValue(shaping.schema, inputValue, type as ScalarType | EnumType);
  if (!valid)
    shaping.errors.push(
      ERRORS.INVALID_GRAPHQL.err(
        `Invalid value found for ${describeLast(shaping.path, type, parentType)}.`,
        { path: Array.from(shaping.path) },
      ),
    );
  shaping.value = valid ? inputValue : null;
  return valid ? 0 : HAS_ERRORS;
}
