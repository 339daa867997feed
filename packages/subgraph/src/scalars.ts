import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { AppError } from '@platform/errors';

/** ISO-8601 date-time strings on the wire, Date objects in resolvers. */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  serialize(value) {
    const date = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(date.getTime()))
      throw new TypeError('DateTime cannot represent an invalid date');
    return date.toISOString();
  },
  parseValue(value) {
    const date = new Date(String(value));
    if (typeof value !== 'string' || Number.isNaN(date.getTime()))
      throw AppError.badInput('DateTime', 'must be an ISO-8601 date-time');
    return date;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING || Number.isNaN(Date.parse(ast.value)))
      throw AppError.badInput('DateTime', 'must be an ISO-8601 date-time');
    return new Date(ast.value);
  },
});

/**
 * A JSON literal as the value it writes, its variables (`{ a: $v }`) replaced by their values;
 * an object leaves out a field whose variable was not given, a list holds null for it.
 */
function literalToJson(
  ast: ValueNode,
  variables?: Readonly<Record<string, unknown>> | null,
): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    case Kind.LIST:
      return ast.values.map((value) => literalToJson(value, variables) ?? null);
    case Kind.OBJECT:
      return Object.fromEntries(
        ast.fields.flatMap((field) => {
          const value = literalToJson(field.value, variables);
          return value === undefined ? [] : [[field.name.value, value]];
        }),
      );
  }
}

/** Any JSON value. */
export const JSONScalar = new GraphQLScalarType<unknown, unknown>({
  name: 'JSON',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literalToJson,
});
