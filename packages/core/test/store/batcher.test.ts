import { describe, expect, it } from 'vitest';
import { createBatcher, type Waiting } from '../../src/store/postgres/batcher.ts';

/** A batcher whose batches are recorded and answered when the test says so. */
function recorded(options: { inFlight: number; budget: number }) {
  const batches: { inputs: number[]; answer(): void; fail(error: unknown): void }[] = [];
  const call = createBatcher<number, number>({
    inFlight: options.inFlight,
    cost: (input) => input,
    budget: options.budget,
    send: (batch: readonly Waiting<number, number>[]) =>
      new Promise<void>((resolve, reject) => {
        batches.push({
          inputs: batch.map((waiting) => waiting.input),
          answer: () => {
            for (const waiting of batch) waiting.resolve(waiting.input * 10);
            resolve();
          },
          fail: reject,
        });
      }),
  });
  return { call, batches };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('createBatcher', () => {
  it('sends the calls of one turn as one batch, and answers each with its own result', async () => {
    const { call, batches } = recorded({ inFlight: 1, budget: 100 });
    const results = Promise.all([call(1), call(2), call(3)]);
    expect(batches).toHaveLength(0); // a lone turn's calls wait for the turn to end
    await turn();
    expect(batches.map((b) => b.inputs)).toEqual([[1, 2, 3]]);
    batches[0]!.answer();
    expect(await results).toEqual([10, 20, 30]);
  });

  it('gathers the calls that arrive while a batch is in flight into the next one, at most inFlight at once', async () => {
    const { call, batches } = recorded({ inFlight: 1, budget: 100 });
    const first = call(1);
    await turn();
    const later = [call(2), call(3), call(4)];
    await turn();
    expect(batches.map((b) => b.inputs)).toEqual([[1]]); // the second waits for the first
    batches[0]!.answer();
    expect(await first).toBe(10);
    await turn();
    expect(batches.map((b) => b.inputs)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.answer();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it('keeps a batch within its budget, whole calls only, and always takes a first call however large', async () => {
    const { call, batches } = recorded({ inFlight: 3, budget: 5 });
    const all = Promise.all([call(9), call(2), call(3), call(1), call(4)]);
    await turn();
    expect(batches.map((b) => b.inputs)).toEqual([[9], [2, 3], [1, 4]]);
    for (const batch of batches) batch.answer();
    expect(await all).toEqual([90, 20, 30, 10, 40]);
  });

  it('rejects every call a failed batch left unanswered, and goes on with the next batch', async () => {
    const { call, batches } = recorded({ inFlight: 1, budget: 100 });
    const failing = [call(1), call(2)].map((p) => p.catch((error: unknown) => error));
    await turn();
    const next = call(3);
    const boom = new Error('database gone');
    batches[0]!.fail(boom);
    expect(await Promise.all(failing)).toEqual([boom, boom]);
    await turn();
    batches[1]!.answer();
    expect(await next).toBe(30);
  });
});
