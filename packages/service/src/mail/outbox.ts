import type { MailMessage, Mailer } from './mailer.ts';

export interface OutboxMessage extends MailMessage {
  id: number;
  sentAt: number;
}

/**
 * The development mailbox: messages are kept in memory (the newest 100) and shown at /dev/mailbox,
 * so a sign-in can be driven without a real inbox. Never for production: anyone who can reach the
 * page can read every code.
 */
export class DevOutbox implements Mailer {
  private readonly kept: OutboxMessage[] = [];
  private nextId = 1;

  constructor(private readonly clock: () => number) {}

  async send(message: MailMessage): Promise<void> {
    this.kept.unshift({ ...message, id: this.nextId++, sentAt: this.clock() });
    this.kept.length = Math.min(this.kept.length, 100);
  }

  /** Newest first. */
  messages(): readonly OutboxMessage[] {
    return this.kept;
  }
}
