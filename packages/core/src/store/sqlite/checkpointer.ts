import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints on a worker thread. Left to SQLite, every ~1000 pages a commit on the event loop
 * would copy the WAL into the database and fsync it, stalling every request for milliseconds. With
 * automatic checkpoints off, this worker runs a PASSIVE checkpoint on its own connection a few times
 * a second (it never blocks writers), so the fsyncs happen off the event loop.
 *
 * A PASSIVE checkpoint alone does not bound the WAL. SQLite starts writing the WAL from its beginning
 * again only when a writer begins at a moment when every frame has been copied back, and under
 * sustained writes the store's connection always begins its next transaction before the worker has
 * copied its last commit: the file grew by 845 MB in 30 s of token exchanges. So once the WAL passes
 * `restartBytes` (the worker looks at the file every 10 ms, and at the content at each checkpoint),
 * the worker copies what it can, then asks the store to hold its writes (the store waits for its
 * running transaction to commit). With the writes held (reads go on), a RESTART checkpoint copies the
 * frames written since and waits for readers to leave the WAL; then the writes go on, and the first one
 * starts the WAL from its beginning (`journal_size_limit` truncates the file back). The copies and
 * their fsyncs happen on the worker: writes wait for the RESTART's, the event loop for none.
 *
 * A RESTART fails only when another connection (another process) reads an old snapshot for longer
 * than `busyTimeoutMs`. Below `maxBytes` the writes then go on and the worker tries again after
 * `intervalMs`; past `maxBytes` they stay held until the WAL is reset (each gives up after the
 * store's lock timeout): back-pressure instead of a WAL without bound.
 *
 * The worker is plain CommonJS evaluated from a string, so it runs the same under tsx, vitest and
 * compiled JavaScript; it loads the very better-sqlite3 the store uses.
 */
const source = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.driver);
const { path, intervalMs, probeMs, restartBytes, maxBytes, busyTimeoutMs } = workerData;
const db = new Database(path);
db.pragma('busy_timeout = 5000');
const frameBytes = db.pragma('page_size', { simple: true }) + 24;
db.pragma('busy_timeout = ' + busyTimeoutMs);
const walBytes = (frames) => (frames > 0 ? 32 + frames * frameBytes : 0);
const fileBytes = () => {
  try {
    return statSync(path + '-wal').size;
  } catch {
    return 0;
  }
};

// idle: checkpointing; asked: waiting for the store to hold its writes; resetting: writes are held.
let state = 'idle';
let nextPassive = 0;
let nextRestart = 0;
let lastSize = -1;
let lastBytes = 0;
let retry;

// The size of the WAL's content, from a checkpoint's answer; a checkpoint that could not start
// (another connection was checkpointing) tells nothing new.
function measured(result) {
  if (result.log >= 0) {
    lastBytes = walBytes(result.log);
    parentPort.postMessage({ type: 'behind', bytes: walBytes(result.log - result.checkpointed) });
  }
  return lastBytes;
}

function passive() {
  nextPassive = Date.now() + intervalMs;
  return measured(db.pragma('wal_checkpoint(PASSIVE)')[0]);
}

function ask(bytes) {
  state = 'asked';
  parentPort.postMessage({ type: 'hold', bytes });
}

function tick() {
  if (state !== 'idle') return;
  const now = Date.now();
  // A WAL started over is truncated back to restartBytes at its first commit, so a file that grows
  // past restartBytes is being appended to there. The frames are copied first, with writes going on,
  // and then the hold is asked for: the RESTART under the hold copies only what was written since.
  // (On a large database the copy of scattered pages and its fsync take 100 ms and more, and writes
  // held for that stall every request.) Past maxBytes the hold is asked for at once.
  const size = fileBytes();
  const growing = size > restartBytes && size !== lastSize;
  lastSize = size;
  if (growing && size >= maxBytes) {
    ask(size);
    passive();
  } else if (growing && now >= nextRestart) {
    passive();
    ask(size);
  } else if (now >= nextPassive) {
    const bytes = passive();
    if (bytes > restartBytes && (bytes >= maxBytes || now >= nextRestart)) ask(bytes);
  }
}

function restart() {
  retry = undefined;
  const [result] = db.pragma('wal_checkpoint(RESTART)');
  const bytes = measured(result);
  if (result.busy === 0 || bytes < maxBytes) {
    state = 'idle';
    nextPassive = Date.now() + intervalMs;
    lastSize = fileBytes(); // the file keeps its size until the next commit starts it over
    nextRestart = result.busy === 0 ? 0 : Date.now() + intervalMs;
    parentPort.postMessage({ type: 'release', reset: result.busy === 0, bytes });
  } else {
    retry = setTimeout(restart, probeMs); // past the hard limit: the writes stay held
  }
}

const timer = setInterval(tick, probeMs);
parentPort.on('message', (message) => {
  if (message === 'held' && state === 'asked') {
    state = 'resetting';
    restart();
  } else if (message === 'not-held' && state === 'asked') {
    state = 'idle';
  } else if (message === 'stop') {
    clearInterval(timer);
    clearTimeout(retry);
    db.pragma('wal_checkpoint(PASSIVE)');
    db.close();
    parentPort.close();
  }
});
`;

export interface CheckpointerOptions {
  /** How often the worker runs a PASSIVE checkpoint. */
  intervalMs: number;
  /** Past this size the worker has writes held while it resets the WAL (RESTART checkpoint). */
  restartBytes: number;
  /** Past this size writes stay held until the WAL could be reset. */
  maxBytes: number;
  /** How long a RESTART waits for readers and writers of other connections (default 100 ms). */
  busyTimeoutMs?: number;
  /** How often the worker looks at the WAL's size (default 10 ms). */
  probeMs?: number;
  /** Waits until no write is running and holds new ones; resolves to the function that lets them go. */
  holdWrites(): Promise<() => void>;
  /** The worker died: nothing checkpoints the WAL any more. */
  onFailure(error: Error): void;
  /** After each checkpoint: the bytes of WAL it has not copied into the database yet. */
  onBehind?(bytes: number): void;
}

export interface Checkpointer {
  /** Runs a last checkpoint and stops the worker. */
  stop(): Promise<void>;
}

export function startCheckpointer(path: string, options: CheckpointerOptions): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const { intervalMs, restartBytes, maxBytes, busyTimeoutMs = 100, probeMs = 10 } = options;
  const worker = new Worker(source, { eval: true, workerData: { driver, path, intervalMs, probeMs, restartBytes, maxBytes, busyTimeoutMs } });
  worker.unref();
  let stopping = false;
  let exited = false;
  let release: (() => void) | undefined;
  const letGo = () => {
    const held = release;
    release = undefined;
    held?.();
  };
  const done = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      exited = true;
      letGo(); // a worker that stopped or died mid-reset must not keep the writes held
      resolve();
    }),
  );
  worker.on('message', (message: { type: string; bytes?: number }) => {
    if (message.type === 'behind') return options.onBehind?.(message.bytes!);
    if (message.type === 'release') return letGo();
    if (message.type !== 'hold') return;
    options.holdWrites().then(
      (held) => {
        if (exited) return held();
        release = held;
        worker.postMessage('held');
      },
      () => {
        // The running transaction did not end within the lock timeout; try again later.
        if (!exited) worker.postMessage('not-held');
      },
    );
  });
  worker.once('error', (error) => {
    if (!stopping) options.onFailure(error);
  });
  return {
    async stop() {
      stopping = true;
      worker.ref(); // keep the process alive until the last checkpoint is done, so close() settles
      worker.postMessage('stop');
      await done;
    },
  };
}
