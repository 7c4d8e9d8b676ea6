/** What authmd logs through: a message and flat fields, at three levels. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * pino, or any logger with its calling convention (bunyan's too): fields first, then the message, and
 * a `child` method, which is how authmd tells it from a `Logger`.
 */
export interface PinoLikeLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  child(bindings: Record<string, unknown>): unknown;
}

/** The `logger` option: authmd's own interface, or a pino-compatible logger called its way. */
export function toLogger(logger: Logger | PinoLikeLogger): Logger {
  if (typeof (logger as Partial<PinoLikeLogger>).child !== 'function') return logger as Logger;
  const pino = logger as PinoLikeLogger;
  return {
    info: (message, fields = {}) => pino.info(fields, message),
    warn: (message, fields = {}) => pino.warn(fields, message),
    error: (message, fields = {}) => pino.error(fields, message),
  };
}

/** pino's numeric levels, so that pino-pretty and log pipelines set up for pino read these lines as theirs. */
const LEVELS = { info: 30, warn: 40, error: 50 } as const;

/**
 * One JSON object per line, in pino's format: `{"level":30,"time":<epoch ms>,"msg":"…",…fields}`.
 * The default logger of the service; the demo writes the same records (see its `AUTHMD_LOG_FORMAT`).
 */
export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit = (level: keyof typeof LEVELS) => (message: string, fields?: Record<string, unknown>) =>
    write(`${JSON.stringify({ level: LEVELS[level], time: Date.now(), msg: message, ...fields })}\n`);
  return { info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
