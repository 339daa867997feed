import { AppError } from '@platform/errors';
import type { Identity } from '@platform/tokens';
import type { SubgraphContext } from './subgraph.server';

/** The signed-in caller, or UNAUTHENTICATED. */
export function requireViewer(context: SubgraphContext): Identity {
  if (!context.viewer) throw context.tokenRefusal ?? AppError.unauthenticated();
  return context.viewer;
}
