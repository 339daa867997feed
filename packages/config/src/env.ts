import { z } from 'zod';

export class EnvError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvError';
  }
}

type Env = Record<string, string | undefined>;

/** Validates `env` against `shape`, collecting every problem before failing. */
export function parseEnv<T extends z.ZodRawShape>(
  shape: T,
  env: Env,
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
  return Object.freeze(result.data);
}

/**
 * Parses the process environment for an app's `environment.ts`. On failure it prints every
 * problem at once and exits non-zero: an app never starts half-configured.
 */
export function loadEnv<T extends z.ZodRawShape>(
  shape: T,
  env: Env = process.env,
): Readonly<z.infer<z.ZodObject<T>>> {
  try {
    return parseEnv(shape, env);
  } catch (error) {
    if (error instanceof EnvError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}
