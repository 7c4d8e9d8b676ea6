import { createInterface } from 'node:readline';

export interface CodeInputHandlers {
  /** A line the person entered (trimmed, not empty). */
  onCode(text: string): void;
  /** Terminal only: what is typed so far, to echo next to the spinner. */
  onTyping?(text: string): void;
  /** Ctrl+C on a terminal in raw mode (no SIGINT is raised then). */
  onInterrupt(): void;
  /** stdin ended: nobody can type a code any more. */
  onEnd(): void;
}

export interface CodeInput {
  stop(): void;
}

/**
 * Reads codes the person types. On a terminal, key by key in raw mode (so the input shows next to
 * the spinner instead of being overwritten by it); otherwise line by line (scripts, tests, pipes).
 */
export function readCodes(stdin: NodeJS.ReadStream, handlers: CodeInputHandlers): CodeInput {
  return stdin.isTTY && typeof stdin.setRawMode === 'function' ? readKeys(stdin, handlers) : readLines(stdin, handlers);
}

function readLines(stdin: NodeJS.ReadStream, handlers: CodeInputHandlers): CodeInput {
  const lines = createInterface({ input: stdin, terminal: false });
  let stopped = false;
  lines.on('line', (line) => {
    const text = line.trim();
    if (text && !stopped) handlers.onCode(text);
  });
  lines.on('close', () => {
    if (!stopped) handlers.onEnd();
  });
  return {
    stop() {
      stopped = true;
      lines.close();
      stdin.pause();
    },
  };
}

function readKeys(stdin: NodeJS.ReadStream, handlers: CodeInputHandlers): CodeInput {
  let buffer = '';
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  const onData = (chunk: string) => {
    if (chunk.startsWith('\x1b')) return; // arrows and other escape sequences
    for (const key of chunk) {
      if (key === '\x03') return handlers.onInterrupt();
      if (key === '\r' || key === '\n') {
        const text = buffer.trim();
        buffer = '';
        handlers.onTyping?.(buffer);
        if (text) handlers.onCode(text);
      } else if (key === '\x7f' || key === '\b') {
        buffer = buffer.slice(0, -1);
        handlers.onTyping?.(buffer);
      } else if (/^[0-9 -]$/.test(key) && buffer.length < 16) {
        buffer += key;
        handlers.onTyping?.(buffer);
      }
    }
  };
  stdin.on('data', onData);
  stdin.resume();
  return {
    stop() {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
