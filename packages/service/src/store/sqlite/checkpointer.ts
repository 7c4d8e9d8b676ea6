import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a worker thread. Left to SQLite, every ~1000 pages a commit on the event loop
 * would copy the WAL into the database and fsync it, stalling every request for milliseconds. With
 * automatic checkpoints off, this worker runs a PASSIVE checkpoint on its own connection a few times
 * a second (it never blocks writers), so the fsyncs happen off the event loop.
 *
 * The worker is plain CommonJS evaluated from a string, so it runs the same under tsx, vitest and
 * compiled JavaScript; it loads the very better-sqlite3 the store uses.
 */
const source = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)');
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Runs a last checkpoint and stops the worker. */
  stop(): Promise<void>;
}

export function startCheckpointer(path: string, intervalMs: number, onFailure: (error: Error) => void): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(source, { eval: true, workerData: { driver, path, intervalMs } });
  worker.unref();
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.once('error', (error) => {
    if (!stopping) onFailure(error);
  });
  return {
    async stop() {
      stopping = true;
      worker.ref(); // keep the process alive until the last checkpoint is done, so close() settles
      worker.postMessage('stop');
      await exited;
    },
  };
}
