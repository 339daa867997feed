export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

/** Posts a GraphQL operation to the gateway the way a frontend does. */
export async function graphql<T = Record<string, unknown>>(
  gatewayUrl: string,
  query: string,
  options: {
    variables?: Record<string, unknown>;
    token?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${gatewayUrl}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ query, variables: options.variables }),
  });
  return (await response.json()) as GraphQLResponse<T>;
}

/** The first error's `extensions.code`. */
export const codeOf = (response: GraphQLResponse<unknown>): unknown =>
  response.errors?.[0]?.extensions?.['code'];

export interface SignedIn {
  token: string;
  id: string;
}

const LOGIN = `mutation ($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken user { id } } }`;
const REGISTER = `mutation ($input: RegisterInput!) {
  register(input: $input) { accessToken user { id } } }`;

/** Signs in as a frontend would; throws with the errors when it fails. */
export async function signIn(gatewayUrl: string, email: string, password: string) {
  const response = await graphql<{ login: { accessToken: string; user: { id: string } } }>(
    gatewayUrl,
    LOGIN,
    { variables: { email, password } },
  );
  if (!response.data) throw new Error(JSON.stringify(response.errors));
  return { token: response.data.login.accessToken, id: response.data.login.user.id };
}

/** Registers a new account (display name from the email); throws with the errors when it fails. */
export async function signUp(
  gatewayUrl: string,
  email: string,
  password = 'correct horse battery',
): Promise<SignedIn> {
  const response = await graphql<{ register: { accessToken: string; user: { id: string } } }>(
    gatewayUrl,
    REGISTER,
    { variables: { input: { email, password, displayName: email.split('@')[0] } } },
  );
  if (!response.data) throw new Error(JSON.stringify(response.errors));
  return { token: response.data.register.accessToken, id: response.data.register.user.id };
}
