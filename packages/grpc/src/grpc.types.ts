import type { ServiceDefinition } from '@grpc/grpc-js';

/** What a handler knows about the call besides its request. */
export interface CallContext {
  readonly correlationId: string;
  /** The end user on whose behalf the caller acts, if any (from the caller's metadata). */
  readonly userId: string | undefined;
  readonly sessionId: string | undefined;
}

type RequestOf<M> = M extends { requestDeserialize: (bytes: Buffer) => infer Req } ? Req : never;
type ResponseOf<M> = M extends { responseSerialize: (value: infer Res) => Buffer } ? Res : never;

/** A service implemented as plain async functions, one per unary method. */
export type UnaryHandlers<S extends ServiceDefinition> = {
  [K in keyof S]: (request: RequestOf<S[K]>, context: CallContext) => Promise<ResponseOf<S[K]>>;
};

export interface CallOptions {
  /** Overrides the client's default deadline for this call. */
  deadlineMs?: number;
}

/** A typed promise client of a service: one async function per unary method. */
export type PromiseClient<S extends ServiceDefinition> = {
  [K in keyof S]: (request: RequestOf<S[K]>, options?: CallOptions) => Promise<ResponseOf<S[K]>>;
};

export const METADATA = {
  internalToken: 'x-internal-token',
  correlationId: 'x-correlation-id',
  userId: 'x-user-id',
  sessionId: 'x-session-id',
} as const;
