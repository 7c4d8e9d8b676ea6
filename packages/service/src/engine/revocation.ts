import { prefixes, ProtocolError } from '@authmd/protocol';
import { verifyAssertion } from './assertions.ts';
import type { EngineContext } from './context.ts';
import { revokeRefreshToken } from './refresh.ts';
import { supersede } from './registration-lifecycle.ts';

/**
 * RFC 7009 revocation. What the token is decides what happens; `token_type_hint` is only a hint
 * and unknown hints are ignored. Unknown or already dead tokens are not an error (§2.2).
 * - an access token or a v0.1 API key: that token;
 * - one of our identity assertions (valid, current generation): every assertion of the registration
 *   and every access token issued from them;
 * - a refresh token: its family, and the registration's assertions and access tokens.
 */
export async function revokeToken(ctx: EngineContext, token: string): Promise<void> {
  const now = ctx.clock();
  let revoked = false;
  if (token.startsWith(prefixes.refreshToken)) {
    await revokeRefreshToken(ctx, token); // clears the token cache itself
  } else if (token.startsWith(prefixes.accessToken) || token.startsWith(prefixes.apiKey)) {
    revoked = await ctx.store.transaction(async (tx) => {
      const row = await ctx.tokens.revoke(tx, token);
      if (row) await ctx.audit.record({ type: 'token.revoked', at: now, registrationId: row.registration_id }, tx);
      return row !== undefined;
    });
  } else if (token.split('.').length === 3) {
    const verified = await verifyAssertion(ctx, token).catch((error: unknown) => {
      if (error instanceof ProtocolError) return undefined; // not one of ours, or dead already: nothing to revoke
      throw error;
    });
    if (!verified) return;
    revoked = await ctx.store.transaction(async (tx) => {
      const superseded = await supersede(ctx, tx, verified.registrationId, verified.generation);
      if (superseded) await ctx.audit.record({ type: 'assertion.revoked', at: now, registrationId: verified.registrationId }, tx);
      return superseded;
    });
  }
  if (revoked) await ctx.tokens.forgetCached();
}
