/** One call waiting in a batch, and how to answer it. */
export interface Waiting<I, O> {
  input: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

export interface BatcherOptions<I, O> {
  /** Batches sent at once; calls arriving meanwhile wait for the next one. */
  inFlight: number;
  /** What a call adds to a batch (rows, parameters); a batch holds at most `budget` (its first call always goes in). */
  cost(input: I): number;
  budget: number;
  /** Sends one batch and answers every call in it. A throw rejects the calls it left unanswered. */
  send(batch: readonly Waiting<I, O>[]): Promise<void>;
}

/**
 * Group commit on the client side: calls arriving from concurrent requests go to the database
 * together. A lone call waits one turn of the event loop; under load, the calls that arrive while a
 * batch is in flight make the next one, so batches grow with the load and no timer holds them.
 */
export function createBatcher<I, O>(options: BatcherOptions<I, O>): (input: I) => Promise<O> {
  let queue: Waiting<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  const take = (): Waiting<I, O>[] => {
    let n = 0;
    let spent = 0;
    for (const waiting of queue) {
      spent += options.cost(waiting.input);
      if (n > 0 && spent > options.budget) break;
      n++;
    }
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    return batch;
  };

  const send = async (batch: Waiting<I, O>[]): Promise<void> => {
    try {
      await options.send(batch);
    } catch (error) {
      // A promise keeps its first answer: rejecting them all reaches only the ones left unanswered.
      for (const waiting of batch) waiting.reject(error);
    }
  };

  const pump = (): void => {
    scheduled = false;
    while (inFlight < options.inFlight && queue.length > 0) {
      inFlight++;
      void send(take()).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  return (input) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ input, resolve, reject });
      if (!scheduled && inFlight < options.inFlight) {
        scheduled = true;
        setImmediate(pump);
      }
    });
}

/** The entry of `map` at `key`, made by `make` and added when there is none (grouping a batch's calls). */
export function entryOf<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}
