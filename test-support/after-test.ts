import { afterEach } from 'vitest';

/**
 * Clean-up that runs after the current test, even when it failed halfway: every step, newest first
 * (servers before the directories holding their files), then one error naming every step that failed.
 */
const steps: (() => Promise<unknown> | unknown)[] = [];

export function afterTest(step: () => Promise<unknown> | unknown): void {
  steps.push(step);
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (const step of steps.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'cleanup failed');
});
