/** A check made of independent parts (several attacks, each judged on its own). */
import { CheckFailed, Skipped } from '../check.ts';
import type { CheckContext } from '../context.ts';

/**
 * Runs the independent parts of one check. Every part runs; the check fails with every failure,
 * is skipped when every part was skipped, and otherwise passes (a skipped part is noted).
 */
export async function runParts(ctx: CheckContext, checkId: string, parts: Record<string, () => Promise<void>>): Promise<void> {
  const failures: string[] = [];
  const skips: string[] = [];
  for (const [name, part] of Object.entries(parts)) {
    try {
      await part();
    } catch (error) {
      if (error instanceof Skipped) skips.push(`${name}: ${error.message}`);
      else if (error instanceof CheckFailed) failures.push(`${name}: ${error.message}`);
      else throw error;
    }
  }
  if (failures.length) throw new CheckFailed(failures.join('; '));
  if (skips.length === Object.keys(parts).length) throw new Skipped(skips.join('; '));
  for (const skip of skips) ctx.note(`${checkId}: part skipped (${skip})`);
}
