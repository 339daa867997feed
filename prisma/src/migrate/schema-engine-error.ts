/** A migration failure, with a readable message that never contains the database password. */
export class SchemaEngineError extends Error {
  override name = 'SchemaEngineError';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/** The `code` of a Node or PostgreSQL error (`ENOENT`, `42P04`, ...). */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const { code } = error;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
