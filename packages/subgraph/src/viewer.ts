import { AppError } from '@platform/errors';
import type { Identity } from '@platform/tokens';
import type { SubgraphContext } from './subgraph.server';

/** The signed-in caller, or UNAUTHENTICATED. */
export function requireViewer(context: SubgraphContext): Identity {
  if (!context.viewer) throw context.tokenRefusal ?? AppError.unauthenticated();
  return context.viewer;
}

/**
 * The signed-in caller, or null for one who sent no token. A token that was sent but refused
 * here (its session ended since the gateway's check, or it cannot be checked while Redis is
 * away) is not "signed out": its refusal is thrown (UNAUTHENTICATED, SERVICE_UNAVAILABLE).
 */
export function viewerIfAny(context: SubgraphContext): Identity | null {
  if (!context.viewer && context.tokenRefusal) throw context.tokenRefusal;
  return context.viewer;
}
