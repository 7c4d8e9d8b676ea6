import { createInterface, type Interface } from 'node:readline';
import type { HumanDriver } from './driver.ts';

/**
 * A real person does the ceremony on any service's pages (`--human manual`): the driver prints, on
 * `output`, exactly what they must do, then waits for them on `input` (one line: the code, or Enter).
 *
 * Lines are read through one node:readline interface over `input`, opened at the first question and
 * kept for the following ones (so a line typed ahead is not lost); `close()` closes it. Calls take
 * turns: a second ceremony's instructions are printed once the first one is answered.
 */

export interface ManualHumanOptions {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

export class ManualHuman implements HumanDriver {
  readonly name = 'manual';
  private readline: Interface | undefined;
  private lines: AsyncIterator<string> | undefined;
  private closed = false;
  /** The call whose turn it is (settled), so instructions never interleave. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(private readonly io: ManualHumanOptions) {}

  readBack(verificationUri: string, email: string): Promise<string> {
    return this.inTurn(async () => {
      this.say(`Open ${verificationUri}, sign in as ${email}, press Authorize, then type the 6-digit code the page shows and press Enter:`);
      for (;;) {
        const line = await this.nextLine('the 6-digit code the page shows');
        const code = line.replace(/[\s-]/g, '');
        if (/^\d{6}$/.test(code)) return code;
        const reason = code === '' ? 'Nothing was typed' : `"${line.trim()}" is not 6 digits`;
        this.say(`${reason}. Type the 6-digit code the page shows and press Enter:`);
      }
    });
  }

  typeIn(verificationUri: string, email: string, userCode: string): Promise<void> {
    return this.inTurn(async () => {
      this.say(`Open ${verificationUri}, sign in as ${email} and type this code on the page: ${userCode}. Press Enter here once the page says the agent is linked.`);
      await this.nextLine('Enter, once the page says the agent is linked');
    });
  }

  deny(verificationUri: string, email: string): Promise<void> {
    return this.inTurn(async () => {
      this.say(`Open ${verificationUri}, sign in as ${email} and press Deny. Press Enter here once you have.`);
      await this.nextLine('Enter, once Deny was pressed');
    });
  }

  emailedCode(email: string): Promise<string> {
    return this.inTurn(async () => {
      this.say(`Open the email the service just sent to ${email} (it asks to let an agent act for you), then type the 6-digit code it gives (in the email, or on the page its link opens) and press Enter:`);
      for (;;) {
        const line = await this.nextLine('the 6-digit code from the email');
        const code = line.replace(/[\s-]/g, '');
        if (/^\d{6}$/.test(code)) return code;
        const reason = code === '' ? 'Nothing was typed' : `"${line.trim()}" is not 6 digits`;
        this.say(`${reason}. Type the 6-digit code from the email and press Enter:`);
      }
    });
  }

  /** Closes the readline interface; a question still waiting rejects. */
  close(): void {
    this.closed = true;
    this.readline?.close();
  }

  private say(text: string): void {
    this.io.output.write(`${text}\n`);
  }

  private async nextLine(waitingFor: string): Promise<string> {
    if (this.closed) throw new Error(`the manual human is closed; cannot wait for ${waitingFor}`);
    if (!this.lines) {
      this.readline = createInterface({ input: this.io.input, terminal: false, crlfDelay: Infinity });
      this.lines = this.readline[Symbol.asyncIterator]();
    }
    const next = await this.lines.next();
    if (next.done) throw new Error(`the input ended while waiting for ${waitingFor}`);
    return next.value;
  }

  private inTurn<T>(step: () => Promise<T>): Promise<T> {
    const run = this.turn.then(step, step);
    this.turn = run.catch(() => undefined);
    return run;
  }
}
