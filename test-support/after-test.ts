/**
 * Clean-up that runs after the current test, even when it failed halfway: every step, newest first
 * (servers before the directories holding their files), then one error naming every step that failed.
 * `runAfterTestSteps` runs them: `setup-file.ts` hooks it after every test of every file (a hook
 * registered here, at this module's top level, would run for the first file of a worker only, since
 * files that share a worker share this module).
 */
const steps: (() => Promise<unknown> | unknown)[] = [];

export function afterTest(step: () => Promise<unknown> | unknown): void {
  steps.push(step);
}

export async function runAfterTestSteps(): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps.splice(0).reverse()) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length) throw new AggregateError(errors, 'cleanup failed');
}
