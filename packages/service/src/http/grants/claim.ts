import { claimGrantRequest, parseWith, tokenResponse } from '@authmd/protocol';
import { pollClaim } from '../../engine/claims.ts';
import { counted } from '../../metrics.ts';
import type { HttpEnv } from '../env.ts';
import { valid } from '../request.ts';

/** v0.7's `urn:workos:agent-auth:grant-type:claim`: poll for the outcome of a type-in ceremony. */
export async function claimGrant(form: Record<string, string>, { ctx }: HttpEnv): Promise<Record<string, unknown>> {
  const params = valid(parseWith(claimGrantRequest, form));
  // Counted as every poll ends, authorization_pending and slow_down included.
  return tokenResponse(await counted(ctx.metrics.exchange, 'claim', () => pollClaim(ctx, params.claim_token, { resource: form.resource, scope: form.scope })));
}
