import { AgentClient } from '../client.ts';
import { FileCredentialStore } from '../store/file-store.ts';
import type { ClaimPrompt, Handoff } from '../types.ts';
import { renderHandoff } from './handoff.ts';
import type { Io } from './io.ts';
import type { Progress } from './progress.ts';

export interface SessionOptions {
  email: string | undefined;
  /** The process will wait for the person (else `--no-wait`). */
  waiting: boolean;
  /** The command line to suggest when not waiting. */
  rerun: string;
}

/**
 * One CLI run's client: the file store (`AUTHMD_STORE_PATH` or `~/.authmd/credentials.json`), the
 * email (`--email` or `AUTHMD_EMAIL`), a prompt that prints hand-offs to stderr, and sleeps that
 * Ctrl+C can cut short.
 */
export class Session {
  readonly store: FileCredentialStore;
  readonly client: AgentClient;
  /** Set while waiting, so that a renewed hand-off is printed above the spinner. */
  progress: Progress | undefined;
  private readonly sleeps = new Set<() => void>();
  private shown = 0;

  constructor(
    readonly io: Io,
    readonly options: SessionOptions,
  ) {
    const path = io.env['AUTHMD_STORE_PATH'];
    this.store = new FileCredentialStore(path ? { path } : {});
    const prompt: ClaimPrompt = { show: (handoff) => this.show(handoff) };
    this.client = new AgentClient({ store: this.store, email: options.email, prompt, sleep: (ms) => this.sleep(ms) });
  }

  /** Ends every pending sleep now (the waits check their abort signal right after). */
  wakeAll(): void {
    for (const wake of [...this.sleeps]) wake();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeps.add(wake);
    });
  }

  private async show(handoff: Handoff): Promise<void> {
    const text = await renderHandoff(handoff, { waiting: this.options.waiting, renewed: this.shown++ > 0, rerun: this.options.rerun }, this.io.stderr, this.io.env);
    if (this.progress) this.progress.note(text);
    else this.io.stderr.write(`${text}\n`);
  }
}

/** `--email`, else `AUTHMD_EMAIL`. */
export function emailFrom(value: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const email = value ?? env['AUTHMD_EMAIL'];
  return email ? email.trim() : undefined;
}
