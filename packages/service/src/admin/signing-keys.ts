import type { KeyDescription } from '@authmd/core/keys';
import type { EngineContext } from '../engine/context.ts';
import { recordAdminAction } from './revocations.ts';

/** The service's signing keys, newest first (the keyring as this replica last read it). */
export function signingKeys(ctx: EngineContext): KeyDescription[] {
  return ctx.keys.list();
}

/** A new signing key now; the previous one stays published until what it signed has expired. Every replica re-reads the keyring. */
export async function rotateSigningKey(ctx: EngineContext, operator: string): Promise<KeyDescription> {
  const key = await ctx.keys.rotate();
  await recordAdminAction(ctx, operator, { action: 'rotate_signing_key', kid: key.kid });
  return ctx.keys.list().find((described) => described.kid === key.kid)!;
}
