import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** What travels with one request from the gateway through subgraphs to services. */
export interface RequestContext {
  readonly correlationId: string;
  /** The signed-in user, once some layer has verified their token. */
  readonly userId?: string | undefined;
  /** The session behind the access token. */
  readonly sessionId?: string | undefined;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

const CORRELATION_ID = /^[\w-]{8,64}$/;

/** Accepts a caller's correlation id only if it looks like one; otherwise makes a new one. */
export function newCorrelationId(candidate?: string | null): string {
  return candidate && CORRELATION_ID.test(candidate) ? candidate : randomUUID();
}
