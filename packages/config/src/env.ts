import { z } from 'zod';

export class EnvError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvError';
  }
}

type Env = Record<string, string | undefined>;

/** A rule across variables: a problem to report, or undefined when the values agree. */
export type EnvRule<T> = (env: T) => string | undefined;

/** Validates `env` against `shape` and then `rules`, collecting every problem before failing. */
export function parseEnv<T extends z.ZodRawShape>(
  shape: T,
  env: Env,
  rules: readonly EnvRule<z.infer<z.ZodObject<T>>>[] = [],
): Readonly<z.infer<z.ZodObject<T>>> {
  // Empty strings count as unset, so `FOO= npm start` falls back to the default.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = z.object(shape).safeParse(cleaned);
  if (!result.success) {
    throw new EnvError(
      result.error.issues.map((issue) => {
        const name = issue.path.join('.') || '(environment)';
        const reason =
          issue.code === 'invalid_type' && issue.input === undefined
            ? 'is required'
            : issue.message;
        return `${name}: ${reason}`;
      }),
    );
  }
  const problems = rules.flatMap((rule) => rule(result.data) ?? []);
  if (problems.length > 0) throw new EnvError(problems);
  return Object.freeze(result.data);
}

/**
 * Parses the process environment for an app's `environment.ts`. On failure it prints every
 * problem at once and exits non-zero: an app never starts half-configured.
 */
export function loadEnv<T extends z.ZodRawShape>(
  shape: T,
  rules: readonly EnvRule<z.infer<z.ZodObject<T>>>[] = [],
  env: Env = process.env,
): Readonly<z.infer<z.ZodObject<T>>> {
  try {
    return parseEnv(shape, env, rules);
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}
