import type { EngineContext } from '../engine/context.ts';
import { providerEventStats } from '../schema.ts';

/** A trusted agent provider as the operator sees it: its settings, its keys, and the events it sent. */
export interface ProviderState {
  issuer: string;
  displayName: string;
  clientIds: string[] | undefined;
  algorithms: string[];
  keys: { jwksUri?: string; kids: string[]; freshUntil?: number; error?: string };
  events: { accepted: number; lastAcceptedAt: number | null; refused: number; lastRefusedAt: number | null; lastRefusal: string | null };
}

export async function trustedProviders(ctx: EngineContext): Promise<ProviderState[]> {
  return Promise.all(
    ctx.trust.entries().map(async (entry) => {
      const [keys, stats] = await Promise.all([ctx.trust.keyState(entry), ctx.store.get(providerEventStats, entry.issuer)]);
      return {
        issuer: entry.issuer,
        displayName: entry.displayName,
        clientIds: entry.clientIds,
        algorithms: entry.algorithms,
        keys,
        events: {
          accepted: stats?.accepted ?? 0,
          lastAcceptedAt: stats?.last_accepted_at ?? null,
          refused: stats?.refused ?? 0,
          lastRefusedAt: stats?.last_refused_at ?? null,
          lastRefusal: stats?.last_refusal ?? null,
        },
      };
    }),
  );
}
