import { AppError } from '@platform/errors';

/** The AppError a call failed with; throws if it succeeded or failed otherwise. */
export async function appErrorOf(call: Promise<unknown>): Promise<AppError> {
  const outcome = await call.then(
    () => 'it succeeded',
    (error: unknown) => error,
  );
  if (outcome instanceof AppError) return outcome;
  throw new Error(`expected an AppError, but ${String(outcome)}`);
}
