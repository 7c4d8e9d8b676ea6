import { clock } from './format.ts';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Shows that authmd is waiting: on a terminal, a spinner with the elapsed time (and what the person
 * is typing) redrawn in place on stderr; elsewhere (a pipe, a log file), one plain line at the start
 * and another every `plainEveryMs`. `note` prints a line without garbling the spinner.
 */
export class Progress {
  private readonly started = Date.now();
  private readonly tty: boolean;
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;
  private input: string | undefined;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly label: string,
    private readonly plainEveryMs = 15_000,
  ) {
    this.tty = stream.isTTY === true;
  }

  start(): void {
    if (this.timer) return;
    if (this.tty) {
      this.draw();
      this.timer = setInterval(() => this.draw(), 100);
    } else {
      this.stream.write(`${this.label}… (Ctrl+C to stop)\n`);
      this.timer = setInterval(() => this.stream.write(`${this.label}… ${clock(Date.now() - this.started)} so far\n`), this.plainEveryMs);
    }
  }

  /** What the person has typed so far (terminal only), shown after the spinner. */
  setInput(text: string | undefined): void {
    this.input = text;
    if (this.tty && this.timer) this.draw();
  }

  /** A line of its own (several lines are fine), printed above the spinner. */
  note(text: string): void {
    if (this.tty && this.timer) this.stream.write('\r\x1b[2K');
    this.stream.write(text.endsWith('\n') ? text : `${text}\n`);
    if (this.tty && this.timer) this.draw();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.tty) this.stream.write('\r\x1b[2K');
  }

  private draw(): void {
    const spinner = FRAMES[this.frame++ % FRAMES.length];
    const typing = this.input === undefined ? '' : `   code: ${this.input}_`;
    this.stream.write(`\r\x1b[2K${spinner} ${this.label}… ${clock(Date.now() - this.started)}${typing}`);
  }
}
